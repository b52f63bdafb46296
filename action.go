package approval

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/signoff/approval/internal/canon"
	"github.com/signoff/approval/internal/ident"
	"github.com/signoff/approval/internal/text"
)

// Action describes something a host program wants to do and may need a
// human to approve. Only Name and RequestedBy are required.
//
// The identity fields (Name, RequestedBy, Initiator, Cost, Risk, Tags, Metadata, RunID,
// StepID, Constraints, Payload, Diff) make up the action hash: two Guard calls
// with equal identity fields are the same action. Message and Provenance are
// context for reviewers and do not change the hash, so a retry that rewords
// its message still finds its pending request. IdempotencyKey is neither:
// it names the operation, not its bytes (see its doc).
type Action struct {
	// Name identifies the kind of action, for example "wire-transfer" or
	// "deploy:production". Policies match it with globs.
	Name string `json:"name"`
	// RequestedBy is the user or service asking to run the action.
	RequestedBy string `json:"requested_by"`
	// Initiator is the person on whose behalf RequestedBy (an agent, a
	// bot, a workflow) asks, if it is not RequestedBy itself. Requester
	// segregation covers both: nobody approves their own agent's request.
	// It is an identity (see CanonicalID) and part of the action hash.
	Initiator string `json:"initiator,omitempty"`
	// Cost is the action's monetary cost, if it has one.
	Cost *Cost `json:"cost,omitempty"`
	// Risk is the action's risk level; RiskNone when unknown.
	Risk Risk `json:"risk,omitempty"`
	// Tags label the action ("production", "customer-data"). Order does not
	// matter: the hash treats them as a set.
	Tags []string `json:"tags,omitempty"`
	// Metadata carries free-form key/value context.
	Metadata map[string]string `json:"metadata,omitempty"`

	// Message tells reviewers what is being asked and why.
	Message string `json:"message,omitempty"`
	// RunID locates the action in a workflow run (see StepID).
	RunID string `json:"run_id,omitempty"`
	// StepID is the step of that run.
	StepID string `json:"step_id,omitempty"`
	// Constraints are the limits that will apply if the action is approved
	// ("max 3 retries", "read-only replica").
	Constraints []string `json:"constraints,omitempty"`
	// Payload is the exact input the approval is bound to, such as an agent's
	// tool-call arguments. A JSON payload is hashed in canonical form (RFC
	// 8785), so key order and whitespace do not change its hash; any other
	// bytes are hashed as they are.
	Payload []byte `json:"payload,omitempty"`
	// Provenance records where the request came from.
	Provenance *Provenance `json:"provenance,omitempty"`
	// Recommendation is an automated reviewer's advice, attached as the
	// request is made (see Recommendation; Gate.Recommend attaches one
	// later). The request keeps it in Request.Recommendations. Context for
	// reviewers: not part of the hash.
	Recommendation *Recommendation `json:"recommendation,omitempty"`
	// Diff lists the file changes a code or infrastructure action makes.
	Diff []FileDiff `json:"diff,omitempty"`

	// IdempotencyKey names the business operation the action carries out
	// (a payment instruction's ID), so that it runs at most once: once an
	// approval of the action was used under the key, a Guard with the key
	// returns that outcome (StatusConsumed) instead of opening a new
	// request, for Config.IdempotencyWindow; a Guard with the key and
	// another action is ErrInvalidAction. See Gate.Guard for the whole
	// rule. Keys are global to the Store, whoever the requester: prefix
	// them ("payments:INSTR-123") if independent systems share a gate. At
	// most 255 bytes of UTF-8, compared byte for byte; empty means none.
	//
	// The key is not part of the action hash, nor of the artifact: the
	// hash says what the bytes are, the key which operation they belong
	// to. It needs a Store that implements IdempotencyKeys (memstore and
	// sqlstore do); Guard refuses a key on any other (ErrUnsupported).
	IdempotencyKey string `json:"idempotency_key,omitempty"`
}

// MaxIdempotencyKeyBytes bounds Action.IdempotencyKey: keys are indexed
// by stores, whose index entries are bounded.
const MaxIdempotencyKeyBytes = 255

// Cost is a monetary amount. Amount must be finite and not negative;
// Currency is an ISO 4217 code such as "USD" and may be empty.
type Cost struct {
	// Amount is the sum, finite and not negative.
	Amount float64 `json:"amount"`
	// Currency is an ISO 4217 code such as "USD"; a cost must name one.
	Currency string `json:"currency,omitempty"`
}

// Provenance tells reviewers how a request came to be.
type Provenance struct {
	// Source is the kind of caller: "api", "sdk", "proxy", "dashboard"...
	Source string `json:"source,omitempty"`
	// CreatedBy is the agent, service or user that produced the action.
	CreatedBy string `json:"created_by,omitempty"`
	// SourceID is the caller's own identifier for the action.
	SourceID string `json:"source_id,omitempty"`
	// CreatedFrom names the conversation, ticket or run it came from.
	CreatedFrom string `json:"created_from,omitempty"`
}

// FileDiff is one changed file of a code or infrastructure change.
type FileDiff struct {
	// Path is the file's path after the change.
	Path string `json:"path"`
	// OldPath is its path before, when the change renamed it.
	OldPath string `json:"old_path,omitempty"`
	// Hunks are the changed parts, in file order.
	Hunks []Hunk `json:"hunks,omitempty"`
}

// Hunk is one contiguous change within a file, in unified-diff terms.
type Hunk struct {
	// OldStart is the first line of the hunk in the old file.
	OldStart int `json:"old_start"`
	// OldLines is how many lines of the old file it covers.
	OldLines int `json:"old_lines"`
	// NewStart is its first line in the new file.
	NewStart int `json:"new_start"`
	// NewLines is how many lines of the new file it covers.
	NewLines int `json:"new_lines"`
	// Body is the hunk's lines with their unified-diff prefixes (' ', '+',
	// '-', '\').
	Body string `json:"body"`
}

// Limits bound the size of an action. The zero value of a field means the
// default given on it.
type Limits struct {
	// MaxPayloadBytes bounds Action.Payload. Defaults to 256 KiB.
	MaxPayloadBytes int
	// MaxTags bounds len(Action.Tags). Defaults to 64.
	MaxTags int
	// MaxMetadata bounds len(Action.Metadata). Defaults to 64.
	MaxMetadata int
	// MaxStringBytes bounds every single string field. Defaults to 4 KiB;
	// Message, hunk bodies and payload are bounded separately.
	MaxStringBytes int
	// MaxMessageBytes bounds Action.Message. Defaults to 16 KiB.
	MaxMessageBytes int
	// MaxDiffBytes bounds the total size of Action.Diff hunk bodies.
	// Defaults to 1 MiB.
	MaxDiffBytes int
}

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.MaxPayloadBytes, 256<<10)
	def(&l.MaxTags, 64)
	def(&l.MaxMetadata, 64)
	def(&l.MaxStringBytes, 4<<10)
	def(&l.MaxMessageBytes, 16<<10)
	def(&l.MaxDiffBytes, 1<<20)
	return l
}

// normalize checks a against the limits and rewrites it in canonical form
// (see CanonicalID): name, requester, currency and tags. a is the caller's
// copy of the action, but its Cost and Tags share memory with the caller:
// they are copied before any change. It allocates only for fields that
// change and to build an error.
func (a *Action) normalize(l *Limits) error {
	if a.Name == "" {
		return fmt.Errorf("%w: name is empty", ErrInvalidAction)
	}
	if a.RequestedBy == "" {
		return fmt.Errorf("%w: requested_by is empty", ErrInvalidAction)
	}
	if err := checkString("name", a.Name, l.MaxStringBytes); err != nil {
		return err
	}
	name, err := ident.Name(a.Name)
	if err != nil {
		return fmt.Errorf("%w: name %q %v", ErrInvalidAction, text.Clip(a.Name, 64), err)
	}
	a.Name = name
	rb, err := CanonicalID(a.RequestedBy)
	if err != nil {
		return fmt.Errorf("%w: requested_by: %w", ErrInvalidAction, err)
	}
	a.RequestedBy = rb
	if a.Initiator != "" {
		in, err := CanonicalID(a.Initiator)
		if err != nil {
			return fmt.Errorf("%w: initiator: %w", ErrInvalidAction, err)
		}
		a.Initiator = in
	}
	if a.Cost != nil {
		if math.IsNaN(a.Cost.Amount) || math.IsInf(a.Cost.Amount, 0) {
			return fmt.Errorf("%w: cost amount is not finite", ErrInvalidAction)
		}
		if a.Cost.Amount < 0 {
			return fmt.Errorf("%w: cost amount %v is negative", ErrInvalidAction, a.Cost.Amount)
		}
		cur, err := ident.Currency(a.Cost.Currency)
		if err != nil {
			return fmt.Errorf("%w: cost: %v (a cost must name its currency)", ErrInvalidAction, err)
		}
		if cur != a.Cost.Currency {
			c := *a.Cost
			c.Currency = cur
			a.Cost = &c
		}
	}
	if a.Risk > RiskCritical || a.Risk < RiskNone {
		return fmt.Errorf("%w: unknown risk level %d", ErrInvalidAction, int(a.Risk))
	}
	if len(a.Tags) > l.MaxTags {
		return fmt.Errorf("%w: %d tags exceed the limit of %d", ErrInvalidAction, len(a.Tags), l.MaxTags)
	}
	copied := false
	for i, t := range a.Tags {
		if t == "" {
			return fmt.Errorf("%w: empty tag", ErrInvalidAction)
		}
		if err := checkString("tag", t, l.MaxStringBytes); err != nil {
			return err
		}
		ft, err := ident.Fold(t)
		if err != nil {
			return fmt.Errorf("%w: tag %q %v", ErrInvalidAction, text.Clip(t, 64), err)
		}
		if ft != t {
			if !copied {
				a.Tags, copied = slices.Clone(a.Tags), true
			}
			a.Tags[i] = ft
		}
	}
	if len(a.Metadata) > l.MaxMetadata {
		return fmt.Errorf("%w: %d metadata keys exceed the limit of %d", ErrInvalidAction, len(a.Metadata), l.MaxMetadata)
	}
	for k, v := range a.Metadata {
		if err := checkString("metadata key", k, l.MaxStringBytes); err != nil {
			return err
		}
		if err := checkString("metadata value", v, l.MaxStringBytes); err != nil {
			return err
		}
	}
	if a.Recommendation != nil {
		if err := a.Recommendation.check(); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidAction, err)
		}
	}
	if err := checkString("message", a.Message, l.MaxMessageBytes); err != nil {
		return err
	}
	if a.IdempotencyKey != "" {
		if err := checkString("idempotency_key", a.IdempotencyKey, MaxIdempotencyKeyBytes); err != nil {
			return err
		}
	}
	if err := checkString("run_id", a.RunID, l.MaxStringBytes); err != nil {
		return err
	}
	if err := checkString("step_id", a.StepID, l.MaxStringBytes); err != nil {
		return err
	}
	for _, c := range a.Constraints {
		if err := checkString("constraint", c, l.MaxStringBytes); err != nil {
			return err
		}
	}
	if len(a.Payload) > l.MaxPayloadBytes {
		return fmt.Errorf("%w: payload of %d bytes exceeds the limit of %d", ErrInvalidAction, len(a.Payload), l.MaxPayloadBytes)
	}
	if p := a.Provenance; p != nil {
		for _, f := range [...]struct{ n, v string }{
			{"provenance source", p.Source}, {"provenance created_by", p.CreatedBy},
			{"provenance source_id", p.SourceID}, {"provenance created_from", p.CreatedFrom},
		} {
			if err := checkString(f.n, f.v, l.MaxStringBytes); err != nil {
				return err
			}
		}
	}
	total := 0
	for _, d := range a.Diff {
		if d.Path == "" {
			return fmt.Errorf("%w: diff entry without path", ErrInvalidAction)
		}
		if err := checkString("diff path", d.Path, l.MaxStringBytes); err != nil {
			return err
		}
		if err := checkString("diff old_path", d.OldPath, l.MaxStringBytes); err != nil {
			return err
		}
		for _, h := range d.Hunks {
			if h.OldStart < 0 || h.OldLines < 0 || h.NewStart < 0 || h.NewLines < 0 {
				return fmt.Errorf("%w: diff hunk of %s has a negative line number", ErrInvalidAction, d.Path)
			}
			total += len(h.Body)
			if !utf8.ValidString(h.Body) {
				return fmt.Errorf("%w: diff hunk of %s is not valid UTF-8", ErrInvalidAction, d.Path)
			}
		}
	}
	if total > l.MaxDiffBytes {
		return fmt.Errorf("%w: diff of %d bytes exceeds the limit of %d", ErrInvalidAction, total, l.MaxDiffBytes)
	}
	return nil
}

func checkString(field, s string, limit int) error {
	if len(s) > limit {
		return fmt.Errorf("%w: %s of %d bytes exceeds the limit of %d", ErrInvalidAction, field, len(s), limit)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalidAction, field)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("%w: %s contains a NUL byte", ErrInvalidAction, field)
	}
	return nil
}

// PayloadHash returns the hex SHA-256 of the canonical payload: the RFC 8785
// form when the payload is JSON, the bytes themselves otherwise. An empty
// payload hashes to "".
//
// RFC 8785 reads numbers as IEEE 754 doubles, so it would map distinct
// large integers (9007199254740993 and 9007199254740992) to one form. A JSON
// payload with a number that the canonical form would change in value is
// therefore hashed as its raw bytes: two different payloads never share a
// hash.
func PayloadHash(payload []byte) string {
	if len(payload) == 0 {
		return ""
	}
	if json.Valid(payload) && canon.NumbersSurvive(payload) {
		if c, err := canon.AppendJSON(nil, payload); err == nil {
			payload = c
		}
	}
	sum := sha256.Sum256(payload)
	return hex.EncodeToString(sum[:])
}

// Hashes returns the action hash and payload hash of a, as stored on its
// request. The action hash is the hex SHA-256 of the canonical JSON (RFC
// 8785) of the identity fields, with the payload represented by its hash and
// tags sorted. It reports ErrInvalidAction for an action that does not
// validate under the default limits. The hashes are those of a's canonical
// form (see CanonicalID), as Guard stores it.
func (a Action) Hashes() (actionHash, payloadHash string, err error) {
	l := Limits{}.withDefaults()
	if err := a.normalize(&l); err != nil {
		return "", "", err
	}
	return a.hashes()
}

func (a *Action) hashes() (actionHash, payloadHash string, err error) {
	payloadHash = PayloadHash(a.Payload)
	b := make([]byte, 0, 256)
	b, err = a.appendCanonical(b, payloadHash)
	if err != nil {
		return "", "", fmt.Errorf("%w: %v", ErrInvalidAction, err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), payloadHash, nil
}

// appendCanonical writes the identity fields with keys in JCS order.
func (a *Action) appendCanonical(b []byte, payloadHash string) ([]byte, error) {
	var err error
	b = append(b, '{')
	if len(a.Constraints) > 0 {
		b = canon.AppendKey(b, "constraints")
		b = canon.AppendStrings(b, a.Constraints)
		b = append(b, ',')
	}
	if a.Cost != nil {
		b = canon.AppendKey(b, "cost")
		b = append(b, '{')
		b = canon.AppendKey(b, "amount")
		if b, err = canon.AppendFloat(b, a.Cost.Amount); err != nil {
			return b, err
		}
		b = append(b, ',')
		b = canon.AppendKey(b, "currency")
		b = canon.AppendString(b, a.Cost.Currency)
		b = append(b, '}', ',')
	}
	if len(a.Diff) > 0 {
		b = canon.AppendKey(b, "diff")
		b = append(b, '[')
		for i, d := range a.Diff {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '{')
			b = canon.AppendKey(b, "hunks")
			b = append(b, '[')
			for j, h := range d.Hunks {
				if j > 0 {
					b = append(b, ',')
				}
				b = append(b, '{')
				b = canon.AppendKey(b, "body")
				b = canon.AppendString(b, h.Body)
				b = append(b, ',')
				b = canon.AppendKey(b, "new_lines")
				b = canon.AppendInt(b, int64(h.NewLines))
				b = append(b, ',')
				b = canon.AppendKey(b, "new_start")
				b = canon.AppendInt(b, int64(h.NewStart))
				b = append(b, ',')
				b = canon.AppendKey(b, "old_lines")
				b = canon.AppendInt(b, int64(h.OldLines))
				b = append(b, ',')
				b = canon.AppendKey(b, "old_start")
				b = canon.AppendInt(b, int64(h.OldStart))
				b = append(b, '}')
			}
			b = append(b, ']', ',')
			b = canon.AppendKey(b, "old_path")
			b = canon.AppendString(b, d.OldPath)
			b = append(b, ',')
			b = canon.AppendKey(b, "path")
			b = canon.AppendString(b, d.Path)
			b = append(b, '}')
		}
		b = append(b, ']', ',')
	}
	if a.Initiator != "" {
		b = canon.AppendKey(b, "initiator")
		b = canon.AppendString(b, a.Initiator)
		b = append(b, ',')
	}
	if len(a.Metadata) > 0 {
		b = canon.AppendKey(b, "metadata")
		b = canon.AppendStringMap(b, a.Metadata)
		b = append(b, ',')
	}
	b = canon.AppendKey(b, "name")
	b = canon.AppendString(b, a.Name)
	b = append(b, ',')
	if payloadHash != "" {
		b = canon.AppendKey(b, "payload_sha256")
		b = canon.AppendString(b, payloadHash)
		b = append(b, ',')
	}
	b = canon.AppendKey(b, "requested_by")
	b = canon.AppendString(b, a.RequestedBy)
	if a.Risk != RiskNone {
		b = append(b, ',')
		b = canon.AppendKey(b, "risk")
		b = canon.AppendString(b, a.Risk.String())
	}
	if a.RunID != "" {
		b = append(b, ',')
		b = canon.AppendKey(b, "run_id")
		b = canon.AppendString(b, a.RunID)
	}
	if a.StepID != "" {
		b = append(b, ',')
		b = canon.AppendKey(b, "step_id")
		b = canon.AppendString(b, a.StepID)
	}
	if len(a.Tags) > 0 {
		tags := slices.Clone(a.Tags)
		slices.SortFunc(tags, func(x, y string) int {
			switch {
			case canon.Less(x, y):
				return -1
			case canon.Less(y, x):
				return 1
			}
			return 0
		})
		tags = slices.Compact(tags)
		b = append(b, ',')
		b = canon.AppendKey(b, "tags")
		b = canon.AppendStrings(b, tags)
	}
	return append(b, '}'), nil
}

// clone returns a deep copy of a, so stored requests never alias caller memory.
func (a Action) clone() Action {
	if a.Cost != nil {
		c := *a.Cost
		a.Cost = &c
	}
	a.Tags = slices.Clone(a.Tags)
	if a.Metadata != nil {
		m := make(map[string]string, len(a.Metadata))
		for k, v := range a.Metadata {
			m[k] = v
		}
		a.Metadata = m
	}
	a.Constraints = slices.Clone(a.Constraints)
	a.Payload = slices.Clone(a.Payload)
	if a.Provenance != nil {
		p := *a.Provenance
		a.Provenance = &p
	}
	if a.Recommendation != nil {
		rec := a.Recommendation.clone()
		a.Recommendation = &rec
	}
	if a.Diff != nil {
		d := make([]FileDiff, len(a.Diff))
		for i, f := range a.Diff {
			f.Hunks = slices.Clone(f.Hunks)
			d[i] = f
		}
		a.Diff = d
	}
	return a
}
