import NameServer
