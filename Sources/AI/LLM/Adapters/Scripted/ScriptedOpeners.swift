import NimbusCore
import NimbusLLM

extension URLOpenerRegistry where Resource == any ChatModelDriver {
    /// Adds `mem://` (and `memory://`): the embedded memory model, in process and volatile — what
    /// `nimbus` answers with when no provider is configured. Options: `latency=100ms` (a fixed delay
    /// before the first token, for load tests) and `models=a,b` (the names it serves; default `memory`,
    /// empty for any name).
    public func withMemory() -> Self {
        var copy = self
        copy.register("mem", "memory") { url in
            try url.options.validate(known: ["latency", "models"], for: "mem://")
            let models = url.options.string("models").map { $0.split(separator: ",").map(String.init) } ?? ["memory"]
            return ScriptedChatModelDriver(configuration: .init(models: models, latency: try url.options.duration("latency") ?? .zero))
        }
        return copy
    }
}
