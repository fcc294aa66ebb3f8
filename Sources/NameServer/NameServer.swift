/// The embedded DNS server (see berth-netd).
public enum NameServer {}
