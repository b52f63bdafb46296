package sqlstore

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/signoff/approval"
)

// requestRow is a request as the store writes it: a normalised copy and
// its JSON body.
type requestRow struct {
	req  *approval.Request
	body []byte
}

// encodeRequest copies r with every time in UTC at microsecond precision
// (the precision the columns keep, so filters and the body agree) and
// encodes the copy.
func encodeRequest(r *approval.Request) (requestRow, error) {
	c := r.Clone()
	c.CreatedAt = utcMicro(c.CreatedAt)
	c.UpdatedAt = utcMicro(c.UpdatedAt)
	c.Deadline = utcMicro(c.Deadline)
	c.ResolvedAt = utcMicro(c.ResolvedAt)
	c.ExpiresAt = utcMicro(c.ExpiresAt)
	c.DueAt = utcMicro(c.DueAt)
	for i := range c.Votes {
		c.Votes[i].At = utcMicro(c.Votes[i].At)
	}
	body, err := json.Marshal(c)
	if err != nil {
		return requestRow{}, fmt.Errorf("encode request %s: %w", r.ID, err)
	}
	if err := checkText("request", c, body); err != nil {
		return requestRow{}, err
	}
	return requestRow{req: c, body: body}, nil
}

// decodeRequest decodes a body column.
func decodeRequest(body []byte) (*approval.Request, error) {
	r := new(approval.Request)
	if err := json.Unmarshal(body, r); err != nil {
		return nil, fmt.Errorf("decode stored request: %w", err)
	}
	return r, nil
}

// policyNames returns the distinct names of r's policies, in order.
func policyNames(r *approval.Request) []string {
	var names []string
	for _, p := range r.Policies {
		if !slices.Contains(names, p.Name) {
			names = append(names, p.Name)
		}
	}
	return names
}

// voterNames returns the distinct approvers who voted on r, in order.
func voterNames(r *approval.Request) []string {
	var names []string
	for _, v := range r.Votes {
		if !slices.Contains(names, v.Approver) {
			names = append(names, v.Approver)
		}
	}
	return names
}

// indexed is the part of a stored body the side tables mirror. Decoding
// only these fields lets Update diff the side tables cheaply.
type indexed struct {
	Policies []struct {
		Name string `json:"name"`
	} `json:"policies"`
	Votes []struct {
		Approver string `json:"approver"`
	} `json:"votes"`
	Deciders []string `json:"deciders"`
}

// indexedNames decodes the names the side tables mirror of a stored body:
// its policies', its voters' and its deciders'.
func indexedNames(body []byte) (requestNames, error) {
	var x indexed
	if err := json.Unmarshal(body, &x); err != nil {
		return requestNames{}, fmt.Errorf("decode stored request: %w", err)
	}
	var n requestNames
	for _, p := range x.Policies {
		if !slices.Contains(n.policies, p.Name) {
			n.policies = append(n.policies, p.Name)
		}
	}
	for _, v := range x.Votes {
		if !slices.Contains(n.voters, v.Approver) {
			n.voters = append(n.voters, v.Approver)
		}
	}
	n.deciders = x.Deciders
	return n, nil
}

// decodeEvent decodes an audit body column into e.
func decodeEvent(body string, e *approval.AuditEvent) error {
	*e = approval.AuditEvent{}
	if readEvent(body, e) {
		return nil
	}
	*e = approval.AuditEvent{}
	if err := json.Unmarshal([]byte(body), e); err != nil {
		return fmt.Errorf("decode stored audit event: %w", err)
	}
	return nil
}

// decodeAudited decodes the part of a request body column that its audit
// events account for.
func decodeAudited(body string) (approval.AuditedRequest, error) {
	var a approval.AuditedRequest
	if readAudited(body, &a) {
		return a, nil
	}
	r, err := decodeRequest([]byte(body))
	if err != nil {
		return approval.AuditedRequest{}, err
	}
	return r.Audited(), nil
}
