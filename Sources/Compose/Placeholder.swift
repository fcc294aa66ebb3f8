// Placeholder until the Compose module lands.
public enum ComposeModule {}
