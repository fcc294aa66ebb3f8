import ArgumentParser
// Placeholder: the runtime work fills this in.
struct ContainerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "container", abstract: "Manage containers.")
}
