package memstore

// Sizes reports how many requests, listed IDs and token IDs s holds.
func Sizes(s *Store) (requests, ids, tokens int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.requests), len(s.ids), len(s.tokens)
}
