import NimbusCore
import NimbusEmailSMTP
import Testing

/// Issue 15 §4: opportunistic STARTTLS (strippable by anyone on the path) is never the default for a remote server.
@Suite struct SMTPSecurityDefaultsTests {
    @Test func tlsIsRequiredUnlessTheServerIsLocal() throws {
        #expect(try SMTPConfiguration(url: OpenURL("smtp://mail.example.com:587")).security == .startTLS(required: true), "no user, remote host")
        #expect(try SMTPConfiguration(url: OpenURL("smtp://user:pw@mail.example.com")).security == .startTLS(required: true))
        #expect(try SMTPConfiguration(url: OpenURL("smtp://127.0.0.1:2526")).security == .startTLS(required: false), "a local relay")
        #expect(try SMTPConfiguration(url: OpenURL("smtp://user:pw@127.0.0.1:2525")).security == .startTLS(required: true), "credentials: always TLS")
        #expect(try SMTPConfiguration(url: OpenURL("smtp://mail.example.com?starttls=opportunistic")).security == .startTLS(required: false), "asked for")
        #expect(try SMTPConfiguration(url: OpenURL("smtps://mail.example.com")).security == .implicitTLS)
    }
}
