import Foundation
import NimbusCore

/// A fraud scoring model loaded from a file: logistic regression or gradient-boosted trees, in the
/// JSON format `scripts/fraud/train` writes from scikit-learn (documented in `docs/security.md`).
///
/// ```swift
/// let model = try FraudModel(json: Data(contentsOf: URL(fileURLWithPath: "gbt.json")))
/// let p = try model.probability(features)          // 0…1
/// let why = try model.contributions(features)      // per feature, positive = towards fraud
/// ```
///
/// Loading checks the whole structure (array lengths, node indices, trees that only point forward,
/// finite numbers), so a bad file fails at start-up, not at the first payment.
public struct FraudModel: Sendable, Hashable {
    /// The feature names, in the order ``probability(_:)`` expects them.
    public let features: [String]
    let kind: Kind

    enum Kind: Sendable, Hashable {
        case logistic(mean: [Double], scale: [Double], coefficients: [Double], intercept: Double)
        case trees(base: Double, learningRate: Double, trees: [Tree])
    }

    struct Tree: Sendable, Hashable, Decodable {
        var feature: [Int]
        var threshold: [Double]
        var left: [Int]
        var right: [Int]
        var value: [Double]
    }

    /// Which kind of model this is (`logistic_regression`, `gradient_boosted_trees`).
    public var type: String {
        switch kind {
        case .logistic: "logistic_regression"
        case .trees: "gradient_boosted_trees"
        }
    }

    /// Parses a model file.
    /// - Throws: `invalidArgument` naming what is wrong.
    public init(json: Data) throws {
        struct Wire: Decodable {
            var type: String
            var features: [String]
            var mean: [Double]?
            var scale: [Double]?
            var coefficients: [Double]?
            var intercept: Double?
            var base_score: Double?
            var learning_rate: Double?
            var trees: [Tree]?
        }
        func bad(_ message: String) -> NimbusError { NimbusError(.invalidArgument, "fraud model: \(message)") }
        let wire: Wire
        do { wire = try JSONDecoder().decode(Wire.self, from: json) } catch { throw bad("not a model document (\(error))") }
        guard !wire.features.isEmpty, Set(wire.features).count == wire.features.count else { throw bad("features must be a non-empty list of distinct names") }
        let n = wire.features.count
        features = wire.features
        switch wire.type {
        case "logistic_regression":
            guard let mean = wire.mean, let scale = wire.scale, let coefficients = wire.coefficients, let intercept = wire.intercept else {
                throw bad("logistic_regression needs mean, scale, coefficients and intercept")
            }
            guard mean.count == n, scale.count == n, coefficients.count == n else { throw bad("mean, scale and coefficients must each have \(n) entries") }
            guard (mean + scale + coefficients + [intercept]).allSatisfy(\.isFinite), scale.allSatisfy({ $0 > 0 }) else {
                throw bad("numbers must be finite and scales positive")
            }
            kind = .logistic(mean: mean, scale: scale, coefficients: coefficients, intercept: intercept)
        case "gradient_boosted_trees":
            guard let base = wire.base_score, let rate = wire.learning_rate, let trees = wire.trees, !trees.isEmpty else {
                throw bad("gradient_boosted_trees needs base_score, learning_rate and trees")
            }
            guard base.isFinite, rate.isFinite, rate > 0 else { throw bad("base_score and learning_rate must be finite (rate > 0)") }
            for (index, tree) in trees.enumerated() {
                let count = tree.value.count
                guard count > 0, [tree.feature.count, tree.threshold.count, tree.left.count, tree.right.count].allSatisfy({ $0 == count }) else {
                    throw bad("tree \(index): feature, threshold, left, right and value must have the same length")
                }
                for node in 0..<count {
                    guard tree.value[node].isFinite else { throw bad("tree \(index) node \(node): value is not finite") }
                    if tree.left[node] == -1 {
                        guard tree.right[node] == -1 else { throw bad("tree \(index) node \(node): a leaf has a right child") }
                        continue
                    }
                    // Children only point forward, so a walk always ends.
                    guard tree.left[node] > node, tree.right[node] > node, tree.left[node] < count, tree.right[node] < count else {
                        throw bad("tree \(index) node \(node): children must be later nodes of the tree")
                    }
                    guard (0..<n).contains(tree.feature[node]), tree.threshold[node].isFinite else {
                        throw bad("tree \(index) node \(node): feature index or threshold out of range")
                    }
                }
            }
            kind = .trees(base: base, learningRate: rate, trees: trees)
        default:
            throw bad("unknown type \"\(wire.type)\" (logistic_regression or gradient_boosted_trees)")
        }
    }

    static func sigmoid(_ x: Double) -> Double { x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)) }

    private func check(_ x: [Double]) throws {
        guard x.count == features.count else { throw NimbusError(.invalidArgument, "the model takes \(features.count) features, got \(x.count)") }
        guard x.allSatisfy(\.isFinite) else { throw NimbusError(.invalidArgument, "features must be finite numbers") }
    }

    /// The raw score (log-odds).
    public func logOdds(_ x: [Double]) throws -> Double {
        try check(x)
        switch kind {
        case .logistic(let mean, let scale, let coefficients, let intercept):
            var sum = 0.0
            for i in x.indices { sum += coefficients[i] * ((x[i] - mean[i]) / scale[i]) }
            return intercept + sum
        case .trees(let base, let rate, let trees):
            var sum = 0.0
            for tree in trees { sum += tree.value[Self.leaf(tree, x)] }
            return base + rate * sum
        }
    }

    /// The probability that the event is fraud.
    public func probability(_ x: [Double]) throws -> Double { Self.sigmoid(try logOdds(x)) }

    static func leaf(_ tree: Tree, _ x: [Double]) -> Int {
        var node = 0
        while tree.left[node] != -1 { node = x[tree.feature[node]] <= tree.threshold[node] ? tree.left[node] : tree.right[node] }
        return node
    }

    /// How much each feature moved the log-odds for this event (coefficient × standardized value for
    /// logistic regression; the change of node value along each tree's path for trees, Saabas'
    /// method). Positive values push towards fraud.
    public func contributions(_ x: [Double]) throws -> [String: Double] {
        try check(x)
        var result = Dictionary(uniqueKeysWithValues: features.map { ($0, 0.0) })
        switch kind {
        case .logistic(let mean, let scale, let coefficients, _):
            for i in x.indices { result[features[i]] = coefficients[i] * ((x[i] - mean[i]) / scale[i]) }
        case .trees(_, let rate, let trees):
            for tree in trees {
                var node = 0
                while tree.left[node] != -1 {
                    let next = x[tree.feature[node]] <= tree.threshold[node] ? tree.left[node] : tree.right[node]
                    result[features[tree.feature[node]], default: 0] += rate * (tree.value[next] - tree.value[node])
                    node = next
                }
            }
        }
        return result
    }
}
