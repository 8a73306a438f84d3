package registry

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
)

// Token lengths accepted by ValidateToken.
const (
	MinTokenLen = 16
	MaxTokenLen = 256
)

// NewToken returns a fresh token: 32 hex characters from 16 random bytes
// (crypto/rand), the seed's format.
func NewToken() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("new token: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// ValidateToken checks the token's format: MinTokenLen to MaxTokenLen
// printable ASCII characters without spaces.
func ValidateToken(tok string) error {
	if tok == "" {
		return ErrTokenRequired
	}
	if len(tok) < MinTokenLen || len(tok) > MaxTokenLen {
		return fmt.Errorf("%w: token is %d characters long; want %d to %d", ErrInvalid, len(tok), MinTokenLen, MaxTokenLen)
	}
	for i := 0; i < len(tok); i++ {
		if c := tok[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("%w: token has a character that is not printable ASCII at position %d", ErrInvalid, i)
		}
	}
	return nil
}

const hashPrefix = "sha256:"

// HashToken is what the registry stores in place of a token.
func HashToken(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hashPrefix + hex.EncodeToString(sum[:])
}

// digest decodes a stored hash into 32 bytes; a malformed one yields
// ok=false.
func digest(stored string) (d [32]byte, ok bool) {
	if !strings.HasPrefix(stored, hashPrefix) {
		return d, false
	}
	n, err := hex.Decode(d[:], []byte(stored[len(hashPrefix):]))
	return d, err == nil && n == 32 && len(stored) == len(hashPrefix)+64
}

// authorizes reports whether tok opens t. Unprotected threads (seed records
// without a hash) open with any token. Both stored hashes are always
// compared, in constant time, so timing tells nothing about which matched.
func (t *Thread) authorizes(tok string) bool {
	if !t.Protected() {
		return true
	}
	given := sha256.Sum256([]byte(tok))
	match := 0
	for _, stored := range []string{t.tokenHash, t.sessionHash} {
		d, ok := digest(stored)
		eq := subtle.ConstantTimeCompare(given[:], d[:])
		if ok {
			match |= eq
		}
	}
	return match == 1 && tok != ""
}

// setOwners protects t with the hashes of the given tokens: the first is
// the thread's token, the second (optional) the session token that created it.
func (t *Thread) setOwners(tokens []string) error {
	var hs []string
	for _, tok := range tokens {
		if tok == "" {
			continue
		}
		if err := ValidateToken(tok); err != nil {
			return err
		}
		h := HashToken(tok)
		if !slices.Contains(hs, h) {
			hs = append(hs, h)
		}
	}
	if len(hs) == 0 {
		return ErrTokenRequired
	}
	if len(hs) > 2 {
		return fmt.Errorf("%w: at most two tokens (thread and session) may own a thread", ErrInvalid)
	}
	t.tokenHash, t.sessionHash = hs[0], ""
	if len(hs) == 2 {
		t.sessionHash = hs[1]
	}
	return nil
}

// copyOwners gives t the same owners as from.
func (t *Thread) copyOwners(from *Thread) {
	t.tokenHash, t.sessionHash = from.tokenHash, from.sessionHash
}
