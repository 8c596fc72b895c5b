import Foundation
import NimbusCore

/// A VAT identification number of an EU member state (plus `XI`, Northern Ireland, and `GB`),
/// checked for its country's syntax and check digits — the rules each tax administration
/// publishes, the same ones `python-stdnum` implements (the test suite compares the two).
///
/// Syntax and check digits prove a number *could* exist; whether it is registered is a VIES
/// question (``VIESClient``).
///
/// ```swift
/// let id = try VATNumber("DE 136,695,976")     // DE136695976
/// id.countryCode                               // "DE"
/// VATNumber.isValid("FR40303265045")           // true
/// ```
public struct VATNumber: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The VAT prefix: the ISO country code, except `EL` for Greece and `XI` for Northern Ireland.
    public let countryCode: String
    /// The number without prefix or separators.
    public let number: String

    /// The prefixes this type knows.
    public static let countryCodes: [String] = ["AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "EL", "ES", "FI", "FR", "HR", "HU", "IE", "IT",
                                                "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK", "XI", "GB"]

    /// Parses and checks `text` (`"DE136695976"`, `"de 136 695 976"`, `"EL-094259216"`; `GR` is read as `EL`).
    /// - Throws: `invalidArgument` saying whether the country, the format, the length or the check digits are wrong.
    public init(_ text: String) throws {
        var compact = text.uppercased().filter { !" -./,:".contains($0) && !$0.isWhitespace }
        if compact.hasPrefix("GR") { compact = "EL" + compact.dropFirst(2) }
        let prefix = String(compact.prefix(2))
        guard Self.countryCodes.contains(prefix) else {
            throw NimbusError(.invalidArgument, "'\(text)' does not start with an EU VAT prefix (\(Self.countryCodes.joined(separator: ", ")))")
        }
        let body = Self.normalize(String(compact.dropFirst(2)), prefix)
        if let problem = VATCheck.problem(body, prefix) {
            throw NimbusError(.invalidArgument, "'\(text)' is not a valid \(prefix) VAT number: \(problem)")
        }
        countryCode = prefix
        number = body
    }

    /// Whether `text` is a VAT number with a valid syntax and check digits.
    public static func isValid(_ text: String) -> Bool { (try? VATNumber(text)) != nil }

    /// The ISO 3166 country (`GR` for `EL`, `GB` for `XI`).
    public var country: String {
        switch countryCode {
        case "EL": "GR"
        case "XI": "GB"
        default: countryCode
        }
    }

    public var description: String { countryCode + number }

    /// Country-specific normal forms (Belgium's old 9 digits, Greece's 8, the Netherlands' short BSN).
    static func normalize(_ body: String, _ prefix: String) -> String {
        switch prefix {
        case "BE":
            var value = body
            if value.hasPrefix("(0)") { value = "0" + value.dropFirst(3) }
            return value.count == 9 ? "0" + value : value
        case "EL":
            return body.count == 8 ? "0" + body : body
        case "NL":
            guard body.count >= 3 else { return body }
            let head = String(body.dropLast(3))
            return String(repeating: "0", count: max(0, 9 - head.count)) + head + body.suffix(3)
        default:
            return body
        }
    }
}

/// The per-country rules. Each returns `nil` for a valid number, or what is wrong.
enum VATCheck {
    static func problem(_ n: String, _ prefix: String) -> String? {
        let c = Array(n)
        switch prefix {
        case "AT": return austria(c)
        case "BE": return belgium(c)
        case "BG": return bulgaria(c)
        case "CY": return cyprus(c)
        case "CZ": return czechia(c)
        case "DE":
            guard let d = digits(c), c.first != "0" else { return "nine digits, not starting with 0" }
            guard d.count == 9 else { return length(9, d.count) }
            return mod11_10(d) == 1 ? nil : checksum
        case "DK":
            guard let d = digits(c), c.first != "0" else { return "eight digits, not starting with 0" }
            guard d.count == 8 else { return length(8, d.count) }
            return weighted(d, [2, 7, 6, 5, 4, 3, 2, 1]) % 11 == 0 ? nil : checksum
        case "EE":
            guard let d = digits(c) else { return "digits only" }
            guard d.count == 9 else { return length(9, d.count) }
            return weighted(d, [3, 7, 1, 3, 7, 1, 3, 7, 1]) % 10 == 0 ? nil : checksum
        case "EL":
            guard let d = digits(c) else { return "digits only" }
            guard d.count == 9 else { return length(9, d.count) }
            let folded = d.dropLast().reduce(0) { $0 * 2 + $1 }
            return folded * 2 % 11 % 10 == d[8] ? nil : checksum
        case "ES": return spain(c)
        case "FI":
            guard let d = digits(c) else { return "digits only" }
            guard d.count == 8 else { return length(8, d.count) }
            return weighted(d, [7, 9, 10, 5, 8, 4, 2, 1]) % 11 == 0 ? nil : checksum
        case "FR": return france(c)
        case "HR":
            guard let d = digits(c) else { return "digits only" }
            guard d.count == 11 else { return length(11, d.count) }
            return mod11_10(d) == 1 ? nil : checksum
        case "HU":
            guard let d = digits(c) else { return "digits only" }
            guard d.count == 8 else { return length(8, d.count) }
            return weighted(d, [9, 7, 3, 1, 9, 7, 3, 1]) % 10 == 0 ? nil : checksum
        case "IE": return ireland(c)
        case "IT": return italy(c)
        case "LT": return lithuania(c)
        case "LU":
            guard let d = digits(c) else { return "digits only" }
            guard d.count == 8 else { return length(8, d.count) }
            return number(d[0..<6]) % 89 == number(d[6..<8]) ? nil : checksum
        case "LV": return latvia(c)
        case "MT":
            guard let d = digits(c), c.first != "0" else { return "eight digits, not starting with 0" }
            guard d.count == 8 else { return length(8, d.count) }
            return weighted(d, [3, 4, 6, 7, 8, 9, 10, 1]) % 37 == 0 ? nil : checksum
        case "NL": return netherlands(c)
        case "PL":
            guard let d = digits(c) else { return "digits only" }
            guard d.count == 10 else { return length(10, d.count) }
            return weighted(d, [6, 5, 7, 2, 3, 4, 5, 6, 7, -1]) % 11 == 0 ? nil : checksum
        case "PT":
            guard let d = digits(c), c.first != "0" else { return "nine digits, not starting with 0" }
            guard d.count == 9 else { return length(9, d.count) }
            return mod(11 - weighted(Array(d.prefix(8)), [9, 8, 7, 6, 5, 4, 3, 2]), 11) % 10 == d[8] ? nil : checksum
        case "RO": return romania(c)
        case "SE":
            guard let d = digits(c), c.count == 12, c.suffix(2) == ["0", "1"] else { return "ten digits followed by 01" }
            return luhn(Array(d.prefix(10))) == 0 ? nil : checksum
        case "SI":
            guard let d = digits(c), c.first != "0" else { return "eight digits, not starting with 0" }
            guard d.count == 8 else { return length(8, d.count) }
            let check = 11 - weighted(Array(d.prefix(7)), [8, 7, 6, 5, 4, 3, 2]) % 11
            return (check == 10 ? 0 : check) == d[7] ? nil : checksum
        case "SK":
            guard let d = digits(c) else { return "digits only" }
            guard d.count == 10 else { return length(10, d.count) }
            if birthNumber(d) { return nil }
            guard d[0] != 0, [2, 3, 4, 7, 8, 9].contains(d[2]) else { return "the third digit must be 2, 3, 4, 7, 8 or 9" }
            return number(d[...]) % 11 == 0 ? nil : checksum
        case "XI", "GB": return unitedKingdom(c)
        default: return "unknown country"
        }
    }

    static let checksum = "the check digits do not match"
    static func length(_ expected: Int, _ found: Int) -> String { "\(expected) digits expected, \(found) found" }

    // MARK: Arithmetic

    static func digits(_ c: [Character]) -> [Int]? {
        guard !c.isEmpty else { return nil }
        var result: [Int] = []
        result.reserveCapacity(c.count)
        for character in c {
            guard let value = character.wholeNumberValue, character.isASCII else { return nil }
            result.append(value)
        }
        return result
    }

    static func digits(_ c: ArraySlice<Character>) -> [Int]? { digits(Array(c)) }

    /// A modulus that is never negative (Python's `%`).
    static func mod(_ value: Int, _ modulus: Int) -> Int { ((value % modulus) + modulus) % modulus }

    static func weighted(_ d: [Int], _ weights: [Int]) -> Int { zip(d, weights).reduce(0) { $0 + $1.0 * $1.1 } }

    static func number(_ d: ArraySlice<Int>) -> Int { d.reduce(0) { $0 * 10 + $1 } }

    /// The Luhn sum (0 for a valid number).
    static func luhn(_ d: [Int]) -> Int {
        var sum = 0
        for (index, digit) in d.reversed().enumerated() {
            if index % 2 == 0 { sum += digit } else { let doubled = digit * 2; sum += doubled / 10 + doubled % 10 }
        }
        return sum % 10
    }

    /// The Luhn check digit that completes `d`.
    static func luhnCheckDigit(_ d: [Int]) -> Int { mod(10 - luhn(d + [0]), 10) }

    /// ISO 7064 MOD 11,10 (1 for a valid number).
    static func mod11_10(_ d: [Int]) -> Int {
        var check = 5
        for digit in d { check = ((check == 0 ? 10 : check) * 2 % 11 + digit) % 10 }
        return check
    }

    /// ISO 7064 MOD 97-10 over letters and digits (letters count as 10...35).
    static func mod97(_ text: String) -> Int? {
        var remainder = 0
        for character in text {
            guard let value = character.isASCII ? Int(String(character), radix: 36) : nil else { return nil }
            for digit in String(value) { remainder = (remainder * 10 + digit.wholeNumberValue!) % 97 }
        }
        return remainder
    }

    static func isDate(year: Int, month: Int, day: Int) -> Bool {
        guard (1...12).contains(month), day >= 1, year >= 1 else { return false }
        var components = DateComponents(year: year, month: month, day: day)
        components.calendar = Calendar(identifier: .gregorian)
        components.timeZone = TimeZone(identifier: "UTC")
        return components.isValidDate
    }

    // MARK: Countries with more to say

    static func austria(_ c: [Character]) -> String? {
        guard c.first == "U", let d = digits(c.dropFirst()) else { return "U followed by eight digits" }
        guard c.count == 9 else { return "U followed by eight digits" }
        return mod(6 - luhn(Array(d.prefix(7))), 10) == d[7] ? nil : checksum
    }

    static func belgium(_ c: [Character]) -> String? {
        guard let d = digits(c), d.contains(where: { $0 != 0 }) else { return "digits only" }
        guard d.count == 10 else { return length(10, d.count) }
        guard d[0] <= 1 else { return "Belgian numbers start with 0 or 1" }
        return (number(d[0..<8]) + number(d[8..<10])) % 97 == 0 ? nil : checksum
    }

    static func bulgaria(_ c: [Character]) -> String? {
        guard let d = digits(c) else { return "digits only" }
        switch d.count {
        case 9:
            var check = d.prefix(8).enumerated().reduce(0) { $0 + ($1.offset + 1) * $1.element } % 11
            if check == 10 { check = d.prefix(8).enumerated().reduce(0) { $0 + ($1.offset + 3) * $1.element } % 11 }
            return check % 10 == d[8] ? nil : checksum
        case 10:
            // A person's EGN, a foreigner's PNF, or another 10-digit number.
            var year = 1900 + number(d[0..<2]), month = number(d[2..<4])
            if month > 40 { year += 100; month -= 40 } else if month > 20 { year -= 100; month -= 20 }
            let egn = isDate(year: year, month: month, day: number(d[4..<6]))
                && weighted(d, [2, 4, 8, 5, 10, 9, 7, 3, 6]) % 11 % 10 == d[9]
            let pnf = weighted(d, [21, 19, 17, 13, 11, 9, 7, 3, 1]) % 10 == d[9]
            let other = mod(11 - weighted(d, [4, 3, 2, 7, 6, 5, 4, 3, 2]), 11) == d[9]
            return egn || pnf || other ? nil : checksum
        default:
            return "9 or 10 digits expected, \(d.count) found"
        }
    }

    static func cyprus(_ c: [Character]) -> String? {
        guard c.count == 9, let d = digits(c.prefix(8)) else { return "eight digits and a letter" }
        guard !(d[0] == 1 && d[1] == 2) else { return "Cypriot numbers do not start with 12" }
        let odd = [1, 0, 5, 7, 9, 13, 15, 17, 19, 21]
        var sum = 0
        for (index, digit) in d.enumerated() { sum += index % 2 == 0 ? odd[digit] : digit }
        let letter = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ")[sum % 26]
        return letter == c[8] ? nil : checksum
    }

    static func czechia(_ c: [Character]) -> String? {
        guard let d = digits(c) else { return "digits only" }
        switch d.count {
        case 8:
            guard d[0] != 9 else { return "eight-digit Czech numbers do not start with 9" }
            let check = mod(11 - d.prefix(7).enumerated().reduce(0) { $0 + (8 - $1.offset) * $1.element }, 11)
            return (check == 0 ? 1 : check) % 10 == d[7] ? nil : checksum
        case 9 where d[0] == 6:
            let sum = d[1..<8].enumerated().reduce(0) { $0 + (8 - $1.offset) * $1.element } % 11
            return mod(8 - mod(10 - sum, 11), 10) == d[8] ? nil : checksum
        case 9, 10:
            return birthNumber(d) ? nil : "not a valid birth number"
        default:
            return "8, 9 or 10 digits expected, \(d.count) found"
        }
    }

    /// A Czech or Slovak birth number (rodné číslo).
    static func birthNumber(_ d: [Int]) -> Bool {
        guard d.count == 9 || d.count == 10 else { return false }
        var year = 1900 + number(d[0..<2])
        let month = number(d[2..<4]) % 50 % 20
        if d.count == 9 {
            if year >= 1980 { year -= 100 }
            if year > 1953 { return false }
        } else if year < 1954 {
            year += 100
        }
        guard isDate(year: year, month: month, day: number(d[4..<6])) else { return false }
        return d.count == 9 || number(d[0..<9]) % 11 % 10 == d[9]
    }

    static func spain(_ c: [Character]) -> String? {
        guard c.count == 9 else { return "nine characters expected, \(c.count) found" }
        guard let middle = digits(c[1..<8]) else { return "a letter or digit, seven digits, a letter or digit" }
        let letters = Array("TRWAGMYFPDXBNJZSQVHLCKE")
        func dni(_ value: Int) -> Character { letters[value % 23] }
        let first = c[0], last = c[8]
        if "KLM".contains(first) { return dni(number(middle[...])) == last ? nil : checksum }
        if let head = first.wholeNumberValue, first.isASCII { return dni(head * 10_000_000 + number(middle[...])) == last ? nil : checksum }
        if let index = Array("XYZ").firstIndex(of: first) { return dni(index * 10_000_000 + number(middle[...])) == last ? nil : checksum }
        guard "ABCDEFGHJNPQRSUVW".contains(first) else { return "an unknown first letter" }
        let check = luhnCheckDigit(middle)
        return last == Character(String(check)) || last == Array("JABCDEFGHI")[check] ? nil : checksum
    }

    static func france(_ c: [Character]) -> String? {
        let alphabet = Array("0123456789ABCDEFGHJKLMNPQRSTUVWXYZ")
        guard c.count == 11 else { return "eleven characters expected, \(c.count) found" }
        guard let first = alphabet.firstIndex(of: c[0]), let second = alphabet.firstIndex(of: c[1]), let siren = digits(c[2...]) else {
            return "two check characters and nine digits"
        }
        if siren[0...2] != [0, 0, 0], luhn(siren) != 0 { return "the SIREN's check digit does not match" }
        let value = number(siren[...])
        if first < 10 && second < 10 {
            return first * 10 + second == (value * 100 + 12) % 97 ? nil : checksum
        }
        let check = first < 10 ? first * 24 + second - 10 : first * 34 + second - 100
        return (value + 1 + check / 11) % 11 == check % 11 ? nil : checksum
    }

    static func ireland(_ c: [Character]) -> String? {
        let alphabet = Array("WABCDEFGHIJKLMNOPQRSTUV")
        guard c.count == 8 || c.count == 9 else { return "8 or 9 characters expected, \(c.count) found" }
        guard c[0].isASCII, c[0].isNumber, digits(c[2..<7]) != nil, c[7...].allSatisfy(alphabet.contains) else {
            return "seven digits (or the old form) and one or two letters"
        }
        func check(_ text: [Character]) -> Character {
            let padded = Array(repeating: Character("0"), count: max(0, 7 - min(7, text.count))) + text
            let head = padded.prefix(7).enumerated().reduce(0) { $0 + (8 - $1.offset) * ($1.element.wholeNumberValue ?? 0) }
            let tail = padded.count > 7 ? (alphabet.firstIndex(of: padded[7]) ?? 0) : 0
            return alphabet[(head + 9 * tail) % 23]
        }
        if digits(c[0..<7]) != nil {
            return c[7] == check(Array(c[0..<7]) + Array(c[8...])) ? nil : checksum
        }
        guard "ABCDEFGHIJKLMNOPQRSTUVWXYZ+*".contains(c[1]) else { return "the old form has a letter, + or * second" }
        return c[7] == check(Array(c[2..<7]) + [c[0]]) ? nil : checksum
    }

    static func italy(_ c: [Character]) -> String? {
        guard let d = digits(c), number(d.prefix(7)) != 0 else { return "eleven digits" }
        guard d.count == 11 else { return length(11, d.count) }
        let office = number(d[7..<10])
        guard (1...100).contains(office) || [120, 121, 888, 999].contains(office) else { return "digits 8 to 10 are not a tax office code" }
        return luhn(d) == 0 ? nil : checksum
    }

    static func lithuania(_ c: [Character]) -> String? {
        guard let d = digits(c) else { return "digits only" }
        switch d.count {
        case 9: guard d[7] == 1 else { return "the eighth digit of a 9-digit number is 1" }
        case 12: guard d[10] == 1 else { return "the eleventh digit of a 12-digit number is 1" }
        default: return "9 or 12 digits expected, \(d.count) found"
        }
        let body = d.dropLast()
        var check = body.enumerated().reduce(0) { $0 + (1 + $1.offset % 9) * $1.element } % 11
        if check == 10 { check = body.enumerated().reduce(0) { $0 + (1 + ($1.offset + 2) % 9) * $1.element } }
        return check % 11 % 10 == d.last! ? nil : checksum
    }

    static func latvia(_ c: [Character]) -> String? {
        guard let d = digits(c) else { return "digits only" }
        guard d.count == 11 else { return length(11, d.count) }
        func personal() -> Bool { (1 + weighted(d, [10, 5, 8, 4, 2, 1, 6, 3, 7, 9])) % 11 % 10 == d[10] }
        if d[0] > 3 { return weighted(d, [9, 1, 4, 8, 3, 10, 2, 5, 7, 6, 1]) % 11 == 3 ? nil : checksum }
        if d[0] == 3 && d[1] == 2 { return personal() ? nil : checksum }
        guard isDate(year: number(d[4..<6]) + 1800 + d[6] * 100, month: number(d[2..<4]), day: number(d[0..<2])) else {
            return "a personal code must start with a birth date"
        }
        return personal() ? nil : checksum
    }

    static func netherlands(_ c: [Character]) -> String? {
        guard c.count == 12 else { return "twelve characters expected, \(c.count) found" }
        guard let person = digits(c[0..<9]), number(person[...]) > 0, let suffix = digits(c[10...]), number(suffix[...]) > 0, c[9] == "B" else {
            return "nine digits, B and two digits"
        }
        let bsn = mod(person.prefix(8).enumerated().reduce(0) { $0 + (9 - $1.offset) * $1.element } - person[8], 11) == 0
        return bsn || mod97("NL" + String(c)) == 1 ? nil : checksum
    }

    static let romanianCounties: Set<Int> = Set(1...48).union([51, 52, 70, 80, 81, 82, 83])

    static func romania(_ c: [Character]) -> String? {
        guard let d = digits(c) else { return "digits only" }
        if d.count == 13 {
            guard d[0] != 0 else { return "a personal number does not start with 0" }
            let century = [1: 1900, 2: 1900, 3: 1800, 4: 1800, 5: 2000, 6: 2000][d[0]] ?? 1900
            guard isDate(year: century + number(d[1..<3]), month: number(d[3..<5]), day: number(d[5..<7])) else { return "not a valid birth date" }
            guard romanianCounties.contains(number(d[7..<9])) else { return "not a Romanian county code" }
            let check = weighted(d, [2, 7, 9, 1, 4, 6, 3, 5, 8, 2, 7, 9]) % 11
            return (check == 10 ? 1 : check) == d[12] ? nil : checksum
        }
        guard (2...10).contains(d.count) else { return "2 to 10 digits (or a 13-digit personal number) expected" }
        guard d[0] != 0 else { return "does not start with 0" }
        let body = Array(repeating: 0, count: 9 - (d.count - 1)) + d.dropLast()
        return 10 * weighted(body, [7, 5, 3, 2, 1, 7, 5, 3, 2]) % 11 % 10 == d.last! ? nil : checksum
    }

    static func unitedKingdom(_ c: [Character]) -> String? {
        let text = String(c)
        if c.count == 5 {
            guard let unit = Int(String(c[2...])), c[2...].allSatisfy(\.isNumber) else { return "GD or HA and three digits" }
            if text.hasPrefix("GD") && unit < 500 || text.hasPrefix("HA") && unit >= 500 { return nil }
            return "not a government department or health authority number"
        }
        if c.count == 11 && (text.hasPrefix("GD8888") || text.hasPrefix("HA8888")) {
            guard let d = digits(c[6...]) else { return "digits after GD8888/HA8888" }
            let unit = number(d[0..<3])
            guard text.hasPrefix("GD") && unit < 500 || text.hasPrefix("HA") && unit >= 500 else { return "not a government department or health authority number" }
            return unit % 97 == number(d[3..<5]) ? nil : checksum
        }
        guard c.count == 9 || c.count == 12, let d = digits(c) else { return "9 or 12 digits" }
        let sum = weighted(Array(d.prefix(9)), [8, 7, 6, 5, 4, 3, 2, 10, 1]) % 97
        if number(d[0..<3]) >= 100 { return [0, 42, 55].contains(sum) ? nil : checksum }
        return sum == 0 ? nil : checksum
    }
}
