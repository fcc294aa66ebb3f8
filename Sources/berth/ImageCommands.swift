import ArgumentParser
// Placeholder: the images work fills this in.
struct ImageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "image", abstract: "Manage images.")
}
