package keyfile

import (
	"crypto/ed25519"
	"sync"
)

// ephemeral remembers the public keys of keys generated in this process
// that were never encoded with EncodePrivate, so that the gate can warn
// that links signed with one stop working when the process exits. It holds
// the most recent keys only: a process that generates keys without end
// does not grow without end, and a key forgotten here only goes unwarned.
var ephemeral struct {
	mu   sync.Mutex
	set  map[[ed25519.PublicKeySize]byte]struct{}
	ring [1024][ed25519.PublicKeySize]byte
	next int // ring index of the next key, whose slot holds the oldest
}

// MarkEphemeral remembers priv, a well-formed key just generated, as living
// only in this process until it is encoded or decoded.
func MarkEphemeral(priv ed25519.PrivateKey) {
	pub := [ed25519.PublicKeySize]byte(priv[ed25519.SeedSize:])
	ephemeral.mu.Lock()
	defer ephemeral.mu.Unlock()
	if ephemeral.set == nil {
		ephemeral.set = make(map[[ed25519.PublicKeySize]byte]struct{})
	}
	// Forget the oldest key (a zero slot, before the ring first fills).
	delete(ephemeral.set, ephemeral.ring[ephemeral.next])
	ephemeral.ring[ephemeral.next] = pub
	ephemeral.next = (ephemeral.next + 1) % len(ephemeral.ring)
	ephemeral.set[pub] = struct{}{}
}

// unmarkEphemeral forgets priv. Its ring slot stays until reused.
func unmarkEphemeral(priv ed25519.PrivateKey) {
	pub := [ed25519.PublicKeySize]byte(priv[ed25519.SeedSize:])
	ephemeral.mu.Lock()
	delete(ephemeral.set, pub)
	ephemeral.mu.Unlock()
}

// IsEphemeral reports whether priv is one of the most recent keys marked
// by MarkEphemeral and since neither encoded nor decoded.
func IsEphemeral(priv ed25519.PrivateKey) bool {
	if len(priv) != ed25519.PrivateKeySize {
		return false
	}
	pub := [ed25519.PublicKeySize]byte(priv[ed25519.SeedSize:])
	ephemeral.mu.Lock()
	defer ephemeral.mu.Unlock()
	_, ok := ephemeral.set[pub]
	return ok
}
