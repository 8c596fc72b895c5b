import NimbusCore

/// A Kafka error code from a response, with its protocol name and whether the protocol calls it
/// retriable (the broker's documented errors, from the protocol guide's error table).
public struct KafkaErrorCode: Sendable, Hashable, CustomStringConvertible {
    public let rawValue: Int16

    public init(_ rawValue: Int16) { self.rawValue = rawValue }

    static let known: [Int16: (name: String, retriable: Bool)] = [
        -1: ("UNKNOWN_SERVER_ERROR", false), 0: ("NONE", false), 1: ("OFFSET_OUT_OF_RANGE", false), 2: ("CORRUPT_MESSAGE", true),
        3: ("UNKNOWN_TOPIC_OR_PARTITION", true), 4: ("INVALID_FETCH_SIZE", false), 5: ("LEADER_NOT_AVAILABLE", true),
        6: ("NOT_LEADER_OR_FOLLOWER", true), 7: ("REQUEST_TIMED_OUT", true), 8: ("BROKER_NOT_AVAILABLE", false),
        9: ("REPLICA_NOT_AVAILABLE", true), 10: ("MESSAGE_TOO_LARGE", false), 12: ("OFFSET_METADATA_TOO_LARGE", false),
        13: ("NETWORK_EXCEPTION", true), 14: ("COORDINATOR_LOAD_IN_PROGRESS", true), 15: ("COORDINATOR_NOT_AVAILABLE", true),
        16: ("NOT_COORDINATOR", true), 17: ("INVALID_TOPIC_EXCEPTION", false), 18: ("RECORD_LIST_TOO_LARGE", false),
        19: ("NOT_ENOUGH_REPLICAS", true), 20: ("NOT_ENOUGH_REPLICAS_AFTER_APPEND", true), 21: ("INVALID_REQUIRED_ACKS", false),
        22: ("ILLEGAL_GENERATION", false), 23: ("INCONSISTENT_GROUP_PROTOCOL", false), 24: ("INVALID_GROUP_ID", false),
        25: ("UNKNOWN_MEMBER_ID", false), 26: ("INVALID_SESSION_TIMEOUT", false), 27: ("REBALANCE_IN_PROGRESS", false),
        28: ("INVALID_COMMIT_OFFSET_SIZE", false), 29: ("TOPIC_AUTHORIZATION_FAILED", false), 30: ("GROUP_AUTHORIZATION_FAILED", false),
        31: ("CLUSTER_AUTHORIZATION_FAILED", false), 32: ("INVALID_TIMESTAMP", false), 33: ("UNSUPPORTED_SASL_MECHANISM", false),
        34: ("ILLEGAL_SASL_STATE", false), 35: ("UNSUPPORTED_VERSION", false), 36: ("TOPIC_ALREADY_EXISTS", false),
        37: ("INVALID_PARTITIONS", false), 38: ("INVALID_REPLICATION_FACTOR", false), 41: ("NOT_CONTROLLER", true),
        42: ("INVALID_REQUEST", false), 43: ("UNSUPPORTED_FOR_MESSAGE_FORMAT", false), 44: ("POLICY_VIOLATION", false),
        45: ("OUT_OF_ORDER_SEQUENCE_NUMBER", false), 46: ("DUPLICATE_SEQUENCE_NUMBER", false), 47: ("INVALID_PRODUCER_EPOCH", false),
        49: ("INVALID_PRODUCER_ID_MAPPING", false), 51: ("CONCURRENT_TRANSACTIONS", true), 56: ("KAFKA_STORAGE_ERROR", true),
        58: ("SASL_AUTHENTICATION_FAILED", false), 59: ("UNKNOWN_PRODUCER_ID", false), 72: ("LISTENER_NOT_FOUND", true),
        74: ("FENCED_LEADER_EPOCH", true), 75: ("UNKNOWN_LEADER_EPOCH", true), 76: ("UNSUPPORTED_COMPRESSION_TYPE", false),
        78: ("OFFSET_NOT_AVAILABLE", true), 79: ("MEMBER_ID_REQUIRED", false), 82: ("FENCED_INSTANCE_ID", false),
        68: ("NON_EMPTY_GROUP", false), 69: ("GROUP_ID_NOT_FOUND", false), 89: ("THROTTLING_QUOTA_EXCEEDED", true), 100: ("UNKNOWN_TOPIC_ID", true),
    ]

    /// The protocol's name for the code (`NOT_LEADER_OR_FOLLOWER`), or `UNKNOWN(n)` for one not in the table.
    public var name: String { Self.known[rawValue]?.name ?? "UNKNOWN(\(rawValue))" }
    /// Whether the request may succeed if sent again (after refreshing metadata, for leadership errors).
    public var isRetriable: Bool { Self.known[rawValue]?.retriable ?? false }
    public var description: String { "\(name) (\(rawValue))" }

    /// The `NimbusError` for this code, with `context` (`producing to orders-2`).
    public func error(_ context: String) -> NimbusError {
        let code: NimbusError.Code = switch rawValue {
        case 3, 100, 72, 69: .notFound
        case 29, 30, 31: .permissionDenied
        case 58, 33, 34: .unauthenticated
        case 36: .alreadyExists
        case 10, 18, 4, 12, 17, 21, 24, 26, 28, 32, 37, 38, 42, 44: .invalidArgument
        case 35, 43, 76: .unimplemented
        case 1, 22, 23, 25, 27, 45, 46, 47, 49, 59, 68, 79, 82: .failedPrecondition
        case 89: .resourceExhausted
        case 7: .deadlineExceeded
        default: isRetriable ? .unavailable : .internal
        }
        return NimbusError(code, "Kafka answered \(description) \(context)")
    }
}
