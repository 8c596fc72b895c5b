import Foundation

/// A binary min-heap of (key, node) pairs on a reusable buffer; a max-heap is the same with negated keys.
struct NodeHeap {
    var keys: ContiguousArray<Float> = []
    var nodes: ContiguousArray<Int32> = []

    init(capacity: Int) {
        keys.reserveCapacity(capacity)
        nodes.reserveCapacity(capacity)
    }

    var count: Int { keys.count }
    var isEmpty: Bool { keys.isEmpty }
    var topKey: Float { keys[0] }
    var topNode: Int32 { nodes[0] }

    mutating func removeAll() {
        keys.removeAll(keepingCapacity: true)
        nodes.removeAll(keepingCapacity: true)
    }

    mutating func push(_ key: Float, _ node: Int32) {
        keys.append(key)
        nodes.append(node)
        var child = keys.count - 1
        keys.withUnsafeMutableBufferPointer { k in
            nodes.withUnsafeMutableBufferPointer { n in
                while child > 0 {
                    let parent = (child - 1) >> 1
                    guard k[child] < k[parent] else { break }
                    k.swapAt(child, parent)
                    n.swapAt(child, parent)
                    child = parent
                }
            }
        }
    }

    mutating func pop() {
        let last = keys.count - 1
        keys.withUnsafeMutableBufferPointer { k in
            nodes.withUnsafeMutableBufferPointer { n in
                k[0] = k[last]
                n[0] = n[last]
                var parent = 0
                while true {
                    let left = 2 * parent + 1, right = left + 1
                    var smallest = parent
                    if left < last, k[left] < k[smallest] { smallest = left }
                    if right < last, k[right] < k[smallest] { smallest = right }
                    guard smallest != parent else { break }
                    k.swapAt(parent, smallest)
                    n.swapAt(parent, smallest)
                    parent = smallest
                }
            }
        }
        keys.removeLast()
        nodes.removeLast()
    }
}

/// What one search needs for itself (a visited set by generation tag, two heaps), so searches can run
/// concurrently on a graph that does not change meanwhile.
final class SearchScratch: @unchecked Sendable {
    private(set) var visited: UnsafeMutablePointer<UInt32> = .allocate(capacity: 0)
    private var capacity = 0
    private var tag: UInt32 = 0
    var candidates = NodeHeap(capacity: 256)
    var results = NodeHeap(capacity: 256)

    deinit { visited.deallocate() }

    /// A fresh tag for a graph of `count` nodes (the visited array grows as needed).
    func nextTag(count: Int) -> UInt32 {
        if count > capacity {
            let grown = max(count, capacity * 2, 1024)
                visited = .allocate(capacity: grown)
            visited.initialize(repeating: 0, count: grown)
            capacity = grown
            tag = 0
        }
        tag &+= 1
        if tag == 0 {
            visited.update(repeating: 0, count: capacity)
            tag = 1
        }
        return tag
    }
}

/// SplitMix64: a small, fast, seedable generator (levels are reproducible for a seed).
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The HNSW graph (Malkov & Yashunin, 2016): nodes are dense integers; vectors and level-0 links
/// live in flat manually managed buffers so the search loop touches no reference counts.
/// Distances are "lower is closer" (the negated score). Not thread-safe: ``HNSWIndex`` guards it.
final class HNSWGraph: @unchecked Sendable {
    let dimensions: Int
    let metric: DistanceMetric
    let m: Int
    let m0: Int
    let efConstruction: Int
    private let levelMultiplier: Double
    private var random: SplitMix64

    private(set) var count = 0
    private(set) var capacity = 0
    private(set) var vectors: UnsafeMutablePointer<Float>
    private(set) var links0: UnsafeMutablePointer<Int32>           // per node: count, then m0 slots
    private(set) var levels: UnsafeMutablePointer<Int32>
    private(set) var upperOffsets: UnsafeMutablePointer<Int32>     // into upperLinks, or −1
    private(set) var deleted: UnsafeMutablePointer<UInt8>
    private(set) var upperLinks: UnsafeMutablePointer<Int32>       // per upper level of a node: count, then m slots
    private(set) var upperCount = 0
    private var upperCapacity = 0
    private(set) var entryPoint: Int32 = -1
    private(set) var maxLevel: Int32 = -1
    private(set) var deletedCount = 0

    /// The scratch of inserts (which hold the graph exclusively).
    private let insertScratch = SearchScratch()

    init(dimensions: Int, metric: DistanceMetric, m: Int, efConstruction: Int, seed: UInt64, capacity: Int = 1024) {
        self.dimensions = dimensions
        self.metric = metric
        self.m = max(2, m)
        self.m0 = 2 * max(2, m)
        self.efConstruction = max(efConstruction, m)
        self.levelMultiplier = 1 / log(Double(max(2, m)))
        self.random = SplitMix64(state: seed)
        vectors = .allocate(capacity: 0)
        links0 = .allocate(capacity: 0)
        levels = .allocate(capacity: 0)
        upperOffsets = .allocate(capacity: 0)
        deleted = .allocate(capacity: 0)
        upperLinks = .allocate(capacity: 0)
        reserve(capacity)
    }

    deinit {
        vectors.deallocate()
        links0.deallocate()
        levels.deallocate()
        upperOffsets.deallocate()
        deleted.deallocate()
        upperLinks.deallocate()
    }

    /// Appends `count` zeroed slots to the upper-level links. - Returns: their offset.
    private func appendUpper(_ slots: Int) -> Int {
        if upperCount + slots > upperCapacity {
            let grown = max(upperCount + slots, upperCapacity * 2, 1024)
            upperLinks = Self.grown(upperLinks, count: upperCount, to: grown, fill: 0)
            upperCapacity = grown
        }
        let offset = upperCount
        (upperLinks + offset).update(repeating: 0, count: slots)
        upperCount += slots
        return offset
    }

    private static func grown<T>(_ old: UnsafeMutablePointer<T>, count: Int, to capacity: Int, fill: T) -> UnsafeMutablePointer<T> {
        let new = UnsafeMutablePointer<T>.allocate(capacity: capacity)
        new.moveInitialize(from: old, count: count)
        (new + count).initialize(repeating: fill, count: capacity - count)
        old.deallocate()
        return new
    }

    /// Makes room for `capacity` nodes.
    func reserve(_ capacity: Int) {
        guard capacity > self.capacity else { return }
        vectors = Self.grown(vectors, count: self.capacity * dimensions, to: capacity * dimensions, fill: 0)
        links0 = Self.grown(links0, count: self.capacity * (m0 + 1), to: capacity * (m0 + 1), fill: 0)
        levels = Self.grown(levels, count: self.capacity, to: capacity, fill: 0)
        upperOffsets = Self.grown(upperOffsets, count: self.capacity, to: capacity, fill: -1)
        deleted = Self.grown(deleted, count: self.capacity, to: capacity, fill: 0)
        self.capacity = capacity
    }

    // MARK: Distances and links

    @inline(__always)
    func distance(_ query: UnsafePointer<Float>, _ node: Int32) -> Float {
        let other = UnsafePointer(vectors + Int(node) * dimensions)
        switch metric {
        case .cosine: return 1 - VectorMath.dot(query, other, count: dimensions)
        case .dot: return -VectorMath.dot(query, other, count: dimensions)
        case .euclidean: return VectorMath.squaredDistance(query, other, count: dimensions)
        }
    }

    @inline(__always)
    func vector(_ node: Int32) -> UnsafePointer<Float> { UnsafePointer(vectors + Int(node) * dimensions) }

    /// The link block of `node` at `level`: a count followed by the neighbour slots.
    @inline(__always)
    func links(_ node: Int32, _ level: Int) -> UnsafeMutablePointer<Int32> {
        if level == 0 { return links0 + Int(node) * (m0 + 1) }
        return upperLinks + Int(upperOffsets[Int(node)]) + (level - 1) * (m + 1)
    }

    func isDeleted(_ node: Int32) -> Bool { deleted[Int(node)] != 0 }

    func markDeleted(_ node: Int32) {
        guard deleted[Int(node)] == 0 else { return }
        deleted[Int(node)] = 1
        deletedCount += 1
    }

    // MARK: Search

    /// Greedy descent on an upper level: the closest node reachable from `entry`.
    private func greedy(_ query: UnsafePointer<Float>, from entry: Int32, level: Int) -> Int32 {
        var current = entry
        var currentDistance = distance(query, current)
        var changed = true
        while changed {
            changed = false
            let block = links(current, level)
            let degree = Int(block[0])
            var index = 0
            while index < degree {
                index += 1
                let neighbour = block[index]
                let d = distance(query, neighbour)
                if d < currentDistance {
                    currentDistance = d
                    current = neighbour
                    changed = true
                }
            }
        }
        return current
    }

    /// Beam search on one level. Every node is explored, but only nodes that `accept` are kept in the
    /// results (deleted or filtered-out nodes still route). Returns the results, unordered, as
    /// (distance, node).
    private func searchLevel(_ query: UnsafePointer<Float>, entry: Int32, ef: Int, level: Int,
                             accept: ((Int32) -> Bool)?, scratch: SearchScratch) -> [(Float, Int32)] {
        let tag = scratch.nextTag(count: count)
        // Hot loop: everything it touches is in locals (no class-property access checks per step).
        let visited = scratch.visited, vectors = UnsafePointer(vectors), dimensions = dimensions, metric = metric
        let stride = level == 0 ? m0 + 1 : 0
        let links0 = UnsafePointer(links0)
        @inline(__always) func measure(_ node: Int32) -> Float {
            let other = vectors + Int(node) * dimensions
            switch metric {
            case .cosine: return 1 - VectorMath.dot(query, other, count: dimensions)
            case .dot: return -VectorMath.dot(query, other, count: dimensions)
            case .euclidean: return VectorMath.squaredDistance(query, other, count: dimensions)
            }
        }
        var candidates = NodeHeap(capacity: 0), results = NodeHeap(capacity: 0)
        swap(&candidates, &scratch.candidates)
        swap(&results, &scratch.results)
        defer {
            swap(&candidates, &scratch.candidates)
            swap(&results, &scratch.results)
        }
        candidates.removeAll()
        results.removeAll()
        let entryDistance = measure(entry)
        visited[Int(entry)] = tag
        candidates.push(entryDistance, entry)
        var bound = Float.infinity
        if accept?(entry) ?? true {
            results.push(-entryDistance, entry)
            bound = entryDistance
        }
        while !candidates.isEmpty {
            let closest = candidates.topKey
            if closest > bound && results.count >= ef { break }
            let node = candidates.topNode
            candidates.pop()
            let block = level == 0 ? links0 + Int(node) * stride : UnsafePointer(links(node, level))
            let degree = Int(block[0])
            var index = 1
            while index <= degree {
                let neighbour = block[index]
                index += 1
                if visited[Int(neighbour)] == tag { continue }
                visited[Int(neighbour)] = tag
                let d = measure(neighbour)
                if results.count < ef || d < bound {
                    candidates.push(d, neighbour)
                    if accept?(neighbour) ?? true {
                        results.push(-d, neighbour)
                        if results.count > ef { results.pop() }
                        bound = -results.topKey
                    }
                }
            }
        }
        var found: [(Float, Int32)] = []
        found.reserveCapacity(results.count)
        for index in 0..<results.count { found.append((-results.keys[index], results.nodes[index])) }
        return found
    }

    /// The `k` closest accepted nodes to `query` (prepared for the metric), closest first. Safe to call
    /// concurrently (each call with its own scratch) while nothing inserts.
    func search(_ query: UnsafePointer<Float>, k: Int, ef: Int, accept: ((Int32) -> Bool)?, scratch: SearchScratch) -> [(Float, Int32)] {
        guard entryPoint >= 0, k > 0 else { return [] }
        var entry = entryPoint
        var level = Int(maxLevel)
        while level > 0 {
            entry = greedy(query, from: entry, level: level)
            level -= 1
        }
        let found = searchLevel(query, entry: entry, ef: max(ef, k), level: 0, accept: accept, scratch: scratch)
        return Array(found.sorted { $0.0 < $1.0 }.prefix(k))
    }

    // MARK: Insertion

    private func randomLevel() -> Int32 {
        let uniform = Double(random.next() >> 11) * 0x1.0p-53
        return Int32(min(32.0, floor(-log(max(uniform, .leastNonzeroMagnitude)) * levelMultiplier)))
    }

    /// hnswlib's heuristic: keep a candidate only if it is closer to the base than to every
    /// neighbour kept so far (spreads links across directions). `sorted` is ascending by distance.
    private func selectNeighbours(_ sorted: [(Float, Int32)], limit: Int) -> [Int32] {
        guard sorted.count > limit else { return sorted.map(\.1) }
        var chosen: [Int32] = []
        chosen.reserveCapacity(limit)
        for (distanceToBase, candidate) in sorted {
            if chosen.count >= limit { break }
            let vector = vector(candidate)
            var keep = true
            for other in chosen where distance(vector, other) < distanceToBase {
                keep = false
                break
            }
            if keep { chosen.append(candidate) }
        }
        return chosen
    }

    private func connect(_ node: Int32, to neighbour: Int32, level: Int) {
        let limit = level == 0 ? m0 : m
        let block = links(neighbour, level)
        let degree = Int(block[0])
        if degree < limit {
            block[degree + 1] = node
            block[0] = Int32(degree + 1)
            return
        }
        let base = vector(neighbour)
        var pool: [(Float, Int32)] = [(distance(base, node), node)]
        for index in 1...degree { pool.append((distance(base, block[index]), block[index])) }
        pool.sort { $0.0 < $1.0 }
        let kept = selectNeighbours(pool, limit: limit)
        block[0] = Int32(kept.count)
        for (index, kept) in kept.enumerated() { block[index + 1] = kept }
    }

    /// Adds a vector (already prepared for the metric). - Returns: its node.
    @discardableResult
    func insert(_ vector: [Float]) -> Int32 {
        if count == capacity { reserve(max(1024, capacity * 2)) }
        let node = Int32(count)
        count += 1
        vector.withUnsafeBufferPointer { (vectors + Int(node) * dimensions).update(from: $0.baseAddress!, count: dimensions) }
        let level = randomLevel()
        levels[Int(node)] = level
        links0[Int(node) * (m0 + 1)] = 0
        if level > 0 {
            upperOffsets[Int(node)] = Int32(appendUpper(Int(level) * (m + 1)))
        }
        guard entryPoint >= 0 else {
            entryPoint = node
            maxLevel = level
            return node
        }
        let query = self.vector(node)
        var entry = entryPoint
        var current = Int(maxLevel)
        while current > Int(level) {
            entry = greedy(query, from: entry, level: current)
            current -= 1
        }
        current = min(Int(level), Int(maxLevel))
        while current >= 0 {
            let found = searchLevel(query, entry: entry, ef: efConstruction, level: current, accept: nil, scratch: insertScratch).sorted { $0.0 < $1.0 }
            let chosen = selectNeighbours(found, limit: m)
            let block = links(node, current)
            block[0] = Int32(chosen.count)
            for (index, neighbour) in chosen.enumerated() { block[index + 1] = neighbour }
            for neighbour in chosen { connect(node, to: neighbour, level: current) }
            if let closest = found.first { entry = closest.1 }
            current -= 1
        }
        if level > maxLevel {
            maxLevel = level
            entryPoint = node
        }
        return node
    }

    // MARK: Persistence (used by HNSWIndex)

    /// Rebuilds a graph from saved buffers (no insertion work).
    func restore(count: Int, vectors: [Float], links0: [Int32], levels: [Int32], upperOffsets: [Int32], upperLinks: [Int32],
                 deleted: [UInt8], entryPoint: Int32, maxLevel: Int32) {
        reserve(max(count, 1))
        upperCount = 0
        self.count = count
        vectors.withUnsafeBufferPointer { self.vectors.update(from: $0.baseAddress!, count: vectors.count) }
        links0.withUnsafeBufferPointer { self.links0.update(from: $0.baseAddress!, count: links0.count) }
        levels.withUnsafeBufferPointer { self.levels.update(from: $0.baseAddress!, count: levels.count) }
        upperOffsets.withUnsafeBufferPointer { self.upperOffsets.update(from: $0.baseAddress!, count: upperOffsets.count) }
        deleted.withUnsafeBufferPointer { self.deleted.update(from: $0.baseAddress!, count: deleted.count) }
        let offset = appendUpper(upperLinks.count)
        upperLinks.withUnsafeBufferPointer { (self.upperLinks + offset).update(from: $0.baseAddress!, count: upperLinks.count) }
        self.entryPoint = entryPoint
        self.maxLevel = maxLevel
        self.deletedCount = deleted.reduce(0) { $0 + Int($1) }
    }
}
