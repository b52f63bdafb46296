package sqlstore

import (
	"slices"
	"sync"

	"github.com/signoff/approval"
)

// maxCachedNames bounds the requests a nameCache remembers.
const maxCachedNames = 4096

// nameCache remembers the policy, voter and decider names (what the side
// tables mirror) and the status of the latest version of recently read or
// written requests, so that Update can diff the side tables, and tell a
// write that resolves the request, without reading and decoding the
// stored body. A version of a request never changes once written (Update
// is compare-and-set on it), so an entry is right for as long as the
// version it names is the stored one, and Update checks that in its own
// transaction: a stale entry costs a conflict the caller would have had
// anyway, never a wrong write.
//
// A nameCache is safe for concurrent use.
type nameCache struct {
	mu sync.Mutex
	m  map[string]requestNames
}

type requestNames struct {
	version                    int64
	status                     approval.Status
	policies, voters, deciders []string
}

// put remembers the names of r at r.Version.
func (c *nameCache) put(r *approval.Request) {
	n := requestNames{version: r.Version, status: r.Status, policies: policyNames(r), voters: voterNames(r), deciders: slices.Clone(r.Deciders)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]requestNames)
	}
	if _, ok := c.m[r.ID]; !ok && len(c.m) >= maxCachedNames {
		for id := range c.m {
			// Map order is unspecified: this drops an arbitrary entry.
			delete(c.m, id)
			break
		}
	}
	c.m[r.ID] = n
}

// get returns the names and status of request id at version, if
// remembered.
func (c *nameCache) get(id string, version int64) (requestNames, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.m[id]
	if !ok || n.version != version {
		return requestNames{}, false
	}
	return n, true
}
