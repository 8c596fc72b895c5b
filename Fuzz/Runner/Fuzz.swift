import Foundation
import NimbusFuzzTargets

/// libFuzzer's entry point; the target is named by NIMBUS_FUZZ_TARGET (see `scripts/fuzz`).
private let selected: FuzzTargets.Target = {
    let name = ProcessInfo.processInfo.environment["NIMBUS_FUZZ_TARGET"] ?? ""
    guard let target = FuzzTargets.target(name) else {
        FileHandle.standardError.write(Data("set NIMBUS_FUZZ_TARGET to one of: \(FuzzTargets.all.map(\.name).joined(separator: ", "))\n".utf8))
        exit(2)
    }
    return target
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    selected.run(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
