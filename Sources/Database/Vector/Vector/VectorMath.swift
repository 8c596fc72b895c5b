/// How closeness between vectors is measured. Scores are "higher is closer" for every metric.
public enum DistanceMetric: String, Sendable, Hashable, Codable, CaseIterable {
    /// Cosine similarity (vectors are normalized when stored; score in −1…1).
    case cosine
    /// Inner product (score = a·b), for embeddings trained for it.
    case dot
    /// Euclidean distance (score = −‖a−b‖²).
    case euclidean
}

/// SIMD kernels over `Float` buffers: 16 lanes and two independent accumulators, so the loop stays
/// in vector registers and pipelines well. Multiply and add are separate on purpose: `addingProduct`
/// is a fused multiply-add, which x86-64's baseline (no FMA) lowers to a libm call per lane.
public enum VectorMath {
    /// a·b.
    @inlinable
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
        var s0 = SIMD16<Float>(), s1 = SIMD16<Float>()
        var index = 0
        let rawA = UnsafeRawPointer(a), rawB = UnsafeRawPointer(b)
        while index + 32 <= count {
            let a0 = rawA.loadUnaligned(fromByteOffset: index * 4, as: SIMD16<Float>.self)
            let b0 = rawB.loadUnaligned(fromByteOffset: index * 4, as: SIMD16<Float>.self)
            let a1 = rawA.loadUnaligned(fromByteOffset: (index + 16) * 4, as: SIMD16<Float>.self)
            let b1 = rawB.loadUnaligned(fromByteOffset: (index + 16) * 4, as: SIMD16<Float>.self)
            s0 += a0 * b0
            s1 += a1 * b1
            index += 32
        }
        while index + 16 <= count {
            s0 += rawA.loadUnaligned(fromByteOffset: index * 4, as: SIMD16<Float>.self) * rawB.loadUnaligned(fromByteOffset: index * 4, as: SIMD16<Float>.self)
            index += 16
        }
        var sum = (s0 + s1).sum()
        while index < count {
            sum += a[index] * b[index]
            index += 1
        }
        return sum
    }

    /// ‖a−b‖².
    @inlinable
    public static func squaredDistance(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
        var s0 = SIMD16<Float>(), s1 = SIMD16<Float>()
        var index = 0
        let rawA = UnsafeRawPointer(a), rawB = UnsafeRawPointer(b)
        while index + 32 <= count {
            let d0 = rawA.loadUnaligned(fromByteOffset: index * 4, as: SIMD16<Float>.self) - rawB.loadUnaligned(fromByteOffset: index * 4, as: SIMD16<Float>.self)
            let d1 = rawA.loadUnaligned(fromByteOffset: (index + 16) * 4, as: SIMD16<Float>.self)
                - rawB.loadUnaligned(fromByteOffset: (index + 16) * 4, as: SIMD16<Float>.self)
            s0 += d0 * d0
            s1 += d1 * d1
            index += 32
        }
        while index + 16 <= count {
            let d = rawA.loadUnaligned(fromByteOffset: index * 4, as: SIMD16<Float>.self) - rawB.loadUnaligned(fromByteOffset: index * 4, as: SIMD16<Float>.self)
            s0 += d * d
            index += 16
        }
        var sum = (s0 + s1).sum()
        while index < count {
            let d = a[index] - b[index]
            sum += d * d
            index += 1
        }
        return sum
    }

    /// The vector scaled to unit length (unchanged if it is all zeros).
    public static func normalized(_ vector: [Float]) -> [Float] {
        let norm = vector.withUnsafeBufferPointer { dot($0.baseAddress!, $0.baseAddress!, count: $0.count) }.squareRoot()
        guard norm > 0 else { return vector }
        return vector.map { $0 / norm }
    }

    /// The score of `b` for query `a` under `metric` (higher is closer); cosine expects both normalized.
    @inlinable
    public static func score(_ metric: DistanceMetric, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
        switch metric {
        case .cosine, .dot: dot(a, b, count: count)
        case .euclidean: -squaredDistance(a, b, count: count)
        }
    }
}
