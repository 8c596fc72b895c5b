import Foundation
import NimbusCore
import NimbusPayment

extension URLOpenerRegistry where Resource == any PaymentDriver {
    /// Adds `mem://`: the embedded engine in process memory, volatile (gone when the process ends).
    public func withMemory() -> Self { withInProcess { try MemoryPaymentDriver() } }

    /// Adds `sqlite://PATH`: the embedded engine in a SQLite file, persistent across runs
    /// (`sqlite://./.nimbus/payments.sqlite`, `sqlite:///var/lib/app/payments.sqlite`). The file's
    /// directory is created.
    public func withSQLite() -> Self {
        var copy = self
        copy.register("sqlite") { url in
            try url.options.validate(known: [], for: "sqlite://")
            return try MemoryPaymentDriver(path: try url.localFilePath(example: "sqlite://./.nimbus/payments.sqlite or sqlite:///var/lib/app/payments.sqlite"))
        }
        return copy
    }
}
