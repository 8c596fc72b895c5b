import Foundation
import NimbusFuzzTargets

/// libFuzzer's driver (its runtime is linked by -sanitize=fuzzer).
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                     _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

/// The target named by NIMBUS_FUZZ_TARGET (see `scripts/fuzz`).
private let selected: FuzzTargets.Target = {
    let name = ProcessInfo.processInfo.environment["NIMBUS_FUZZ_TARGET"] ?? ""
    guard let target = FuzzTargets.target(name) else {
        FileHandle.standardError.write(Data("set NIMBUS_FUZZ_TARGET to one of: \(FuzzTargets.all.map(\.name).joined(separator: ", "))\n".utf8))
        exit(2)
    }
    return target
}()

/// The executable's entry (SwiftPM names it after the module): hands the arguments to libFuzzer.
@_cdecl("nimbus_fuzz_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    _ = selected
    var count = argc
    var arguments = argv
    return runFuzzerDriver(&count, &arguments) { data, size in
        selected.run(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
        return 0
    }
}

/// libFuzzer's own entry, for builds where libFuzzer's `main` is linked (debug builds): the same target.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    selected.run(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    return 0
}
