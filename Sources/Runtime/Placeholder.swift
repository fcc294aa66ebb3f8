// Placeholder.
public enum RuntimeModule {}
