import ArgumentParser
// Placeholder: the compose work fills this in.
struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "config", abstract: "Parse, resolve and render the compose file in canonical format.")
    @OptionGroup var global: GlobalOptions
}
