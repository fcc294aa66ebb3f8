import Testing

@testable import Runtime

/// Container name links store the ID in base64url so the target fits in an ext4 inode.
@Suite struct NameLinkTests {
    @Test func roundTripsAnIDInUnder60Bytes() throws {
        for _ in 0..<50 {
            let id = Container.randomID()
            let target = NameLink.target(forID: id)
            #expect(target.utf8.count == 43)
            #expect(NameLink.id(fromTarget: target) == id)
        }
        let edge = String(repeating: "f", count: 64)
        #expect(NameLink.id(fromTarget: NameLink.target(forID: edge)) == edge)
        let zero = String(repeating: "0", count: 64)
        #expect(NameLink.id(fromTarget: NameLink.target(forID: zero)) == zero)
    }

    @Test func readsOldHexLinksAndRejectsJunk() {
        let id = Container.randomID()
        #expect(NameLink.id(fromTarget: id) == id)
        #expect(NameLink.id(fromTarget: "") == nil)
        #expect(NameLink.id(fromTarget: "not/a/link") == nil)
        #expect(NameLink.id(fromTarget: String(repeating: "z", count: 64)) == nil)
        #expect(NameLink.id(fromTarget: "AAAA") == nil)
    }
}
