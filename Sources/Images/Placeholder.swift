// Placeholder.
public enum ImagesModule {}
