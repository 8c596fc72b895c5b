import Foundation
import NimbusCore
import NimbusFraud
import NimbusFraudMemory
import NimbusTesting
import Testing

@Suite("Fraud models: the file format and what it refuses")
struct FraudModelTests {
    static let names = FraudFeatures.names
    static func logistic(_ overrides: [String: Any] = [:]) -> Data {
        var object: [String: Any] = ["type": "logistic_regression", "features": names, "mean": Array(repeating: 0.0, count: 9),
                                     "scale": Array(repeating: 1.0, count: 9), "coefficients": [1.0, 2, 0, 0, 0, 0, 0, 0, 0], "intercept": -3.0]
        for (key, value) in overrides { object[key] = value }
        return try! JSONSerialization.data(withJSONObject: object)
    }
    static func trees(_ tree: [String: Any]) -> Data {
        try! JSONSerialization.data(withJSONObject: ["type": "gradient_boosted_trees", "features": names, "base_score": -1.0, "learning_rate": 0.5, "trees": [tree]])
    }

    @Test("logistic regression: p = sigmoid(intercept + Σ coefficient × standardized feature); contributions add up to the log-odds")
    func logisticScore() throws {
        let model = try FraudModel(json: Self.logistic())
        let x = [2.0, 1, 0, 0, 0, 0, 0, 0, 0]
        #expect(abs(try model.probability(x) - 1 / (1 + exp(-(-3.0 + 2 + 2)))) < 1e-15)
        let contributions = try model.contributions(x)
        #expect(abs(contributions.values.reduce(0, +) + -3.0 - (try model.logOdds(x))) < 1e-12)
        #expect(contributions["foreign_ip"] == 2)
    }

    @Test("trees: left when x <= threshold; Saabas contributions add up to the log-odds")
    func treeScore() throws {
        // node 0 splits on card_count_1h at 2.5; node 1 (left) is a leaf, node 2 splits on foreign_ip at 0.5.
        let tree: [String: Any] = ["feature": [2, -2, 1, -2, -2], "threshold": [2.5, -2, 0.5, -2, -2], "left": [1, -1, 3, -1, -1],
                                   "right": [2, -1, 4, -1, -1], "value": [0.0, -1.0, 1.0, 0.5, 2.0]]
        let model = try FraudModel(json: Self.trees(tree))
        var x = Array(repeating: 0.0, count: 9)
        #expect(try model.logOdds(x) == -1.0 + 0.5 * -1.0)
        x[2] = 2.5
        #expect(try model.logOdds(x) == -1.5)                   // the threshold itself goes left
        x[2] = 3; x[1] = 1
        #expect(try model.logOdds(x) == -1.0 + 0.5 * 2.0)
        let contributions = try model.contributions(x)
        #expect(abs(contributions.values.reduce(0, +) - 1.0 - (try model.logOdds(x)) - 0.0 + 1.0 - 1.0) < 1e-12)
        #expect(contributions["card_count_1h"] == 0.5 && contributions["foreign_ip"] == 0.5)
    }

    @Test("malformed models are refused when loaded", arguments: [
        ("unknown type", logistic(["type": "random_forest"])),
        ("length mismatch", logistic(["mean": [0.0]])),
        ("zero scale", logistic(["scale": Array(repeating: 0.0, count: 9)])),
        ("duplicate feature names", logistic(["features": Array(repeating: "x", count: 9)])),
        ("a cycle", trees(["feature": [0, 0], "threshold": [1.0, 1.0], "left": [1, 0], "right": [1, 0], "value": [0.0, 0.0]])),
        ("child out of range", trees(["feature": [0], "threshold": [1.0], "left": [5], "right": [6], "value": [0.0]])),
        ("feature out of range", trees(["feature": [12, -2, -2], "threshold": [1.0, -2, -2], "left": [1, -1, -1], "right": [2, -1, -1], "value": [0.0, 1, 2]])),
        ("leaf with a right child", trees(["feature": [-2, -2], "threshold": [-2.0, -2], "left": [-1, -1], "right": [1, -1], "value": [0.0, 1]])),
        ("not JSON", Data("{".utf8)),
    ] as [(String, Data)])
    func refused(what: String, json: Data) {
        #expect(throws: NimbusError.self, "\(what)") { _ = try FraudModel(json: json) }
    }

    @Test("scoring refuses the wrong number of features and non-finite values; the engine refuses a model for other features")
    func scoringRefusals() throws {
        let model = try FraudModel(json: Self.logistic())
        #expect(throws: NimbusError.self) { _ = try model.probability([1, 2]) }
        #expect(throws: NimbusError.self) { _ = try model.probability([.nan, 0, 0, 0, 0, 0, 0, 0, 0]) }
        var renamed = Self.names
        renamed[0] = "amount"
        let other = try FraudModel(json: Self.logistic(["features": renamed]))
        #expect(throws: NimbusError.self) { _ = try RiskEngine(model: other, velocity: MemoryVelocityStore()) }
        var bad = RiskEngine.Configuration()
        bad.reviewThreshold = 0.95
        #expect(throws: NimbusError.self) { _ = try RiskEngine(model: model, velocity: MemoryVelocityStore(), configuration: bad) }
    }
}
