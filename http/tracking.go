package http

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"io"
	"net/http"
	"strings"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/tracking"
)

// readBody reads a request body, decompressing gzip or deflate (SDKs such as
// RudderStack's compress by default), and refuses more than the request
// limit after decompression, so a small compressed bomb cannot get through.
func readBody(r *http.Request) ([]byte, error) {
	var rd io.Reader = r.Body
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(io.LimitReader(r.Body, tracking.MaxRequestBytes+1))
		if err != nil {
			return nil, portrait.Errorf(portrait.EINVALID, "body is not valid gzip: %v", err)
		}
		defer zr.Close()
		rd = zr
	case "deflate":
		zr, err := zlib.NewReader(io.LimitReader(r.Body, tracking.MaxRequestBytes+1))
		if err != nil {
			return nil, portrait.Errorf(portrait.EINVALID, "body is not valid deflate: %v", err)
		}
		defer zr.Close()
		rd = zr
	default:
		return nil, portrait.Errorf(portrait.EINVALID, "unsupported Content-Encoding %q (use gzip, deflate or none)", enc)
	}
	hint := 0
	if rd == r.Body && r.ContentLength > 0 {
		hint = int(min(r.ContentLength, tracking.MaxRequestBytes))
	}
	body, err := readAll(io.LimitReader(rd, tracking.MaxRequestBytes+1), hint)
	if err != nil {
		return nil, portrait.Errorf(portrait.EINVALID, "cannot read the request body: %v", err)
	}
	if len(body) > tracking.MaxRequestBytes {
		return nil, portrait.Errorf(portrait.ETOOLARGE, "request is over the %d-byte limit; send smaller batches", tracking.MaxRequestBytes)
	}
	return body, nil
}

// readAll is io.ReadAll into a buffer sized by the request's declared
// length: io.ReadAll starts at 512 bytes and doubles, which for a batch of
// a hundred events copied and allocated twice the body again per request.
// The hint only sizes the buffer; what is read is what the body holds.
func readAll(rd io.Reader, hint int) ([]byte, error) {
	if hint <= 0 {
		return io.ReadAll(rd)
	}
	b := make([]byte, 0, hint+1) // +1: the read that finds the end needs room
	for {
		n, err := rd.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // longer than declared: grow as ReadAll does
		}
	}
}

type rejection struct {
	Index  int    `json:"index"`
	Reason string `json:"reason"`
}

type trackResponse struct {
	Success    bool        `json:"success"`
	Accepted   int         `json:"accepted"`
	Duplicates int         `json:"duplicates"`
	Rejected   []rejection `json:"rejected"`
}

func (s *Server) handleSingle(typ string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, key, ok := s.trackingRequest(w, r)
		if !ok {
			return
		}
		if len(body) > tracking.MaxEventBytes {
			s.quarantineWhole(r, key.Name, body, "event is over the 32 KB limit per event")
			Error(w, r, portrait.Errorf(portrait.ETOOLARGE, "event is %d bytes, over the %d-byte limit per event", len(body), tracking.MaxEventBytes))
			return
		}
		res, err := s.Parser.ParseSingle(body, typ, key.Name, s.Now().UTC())
		if err != nil {
			Error(w, r, err)
			return
		}
		s.accept(w, r, key.Name, res)
	})
}

// trackingRequest authenticates a tracking request's write key and reads
// its body; on failure it has answered already. A key in the headers is
// checked before a byte of the body is read, and the body then gets the
// server's read timeout; a request that shows no credential (analytics.js
// puts the writeKey in the body) must send its body within the shorter
// UnauthBodyTimeout, so unauthenticated clients cannot hold connections.
func (s *Server) trackingRequest(w http.ResponseWriter, r *http.Request) ([]byte, *portrait.Key, bool) {
	var key *portrait.Key
	if secret := headerSecret(r); secret != "" {
		k, err := s.authenticate(r, portrait.KeyWrite, secret)
		if err != nil {
			Error(w, r, err)
			return nil, nil, false
		}
		key = k
		bodyDeadline(w, s.Limits.AuthBodyTimeout)
	} else {
		bodyDeadline(w, s.Limits.UnauthBodyTimeout)
	}
	body, err := readBody(r)
	if err != nil {
		s.metrics.rejectedReq.Inc()
		Error(w, r, err)
		return nil, nil, false
	}
	if key == nil {
		if key, err = s.writeKey(r, func() string { return tracking.WriteKeyFromBody(body) }); err != nil {
			Error(w, r, err)
			return nil, nil, false
		}
	}
	if s.limited(w, r, key) {
		return nil, nil, false
	}
	return body, key, true
}

func (s *Server) handleBatch(w http.ResponseWriter, r *http.Request) {
	body, key, ok := s.trackingRequest(w, r)
	if !ok {
		return
	}
	res, err := s.Parser.ParseBatch(body, key.Name, s.Now().UTC())
	if err != nil {
		// Nothing in it could be read as events; keep the bytes anyway.
		s.quarantineWhole(r, key.Name, body, portrait.ErrorMessage(err))
		Error(w, r, err)
		return
	}
	s.accept(w, r, key.Name, res)
}

func (s *Server) quarantineWhole(r *http.Request, source string, body []byte, reason string) {
	rej := &portrait.Rejected{Source: source, Index: -1, Reason: reason, Raw: bytes.Clone(body), ReceivedAt: s.Now().UTC()}
	if _, err := s.Events.Append(r.Context(), nil, []*portrait.Rejected{rej}); err != nil {
		s.Log.Error("cannot quarantine a rejected request", "err", err)
	}
	s.metrics.rejected.WithLabelValues(source).Inc()
}

// accept makes the parsed events and rejections durable, then answers:
// 200 when anything was accepted (rejections listed), 413 when everything
// was too large, 400 otherwise.
func (s *Server) accept(w http.ResponseWriter, r *http.Request, source string, res *tracking.Result) {
	ar, err := s.Events.Append(r.Context(), res.Events, res.Rejected)
	if err != nil {
		Error(w, r, err)
		return
	}
	s.metrics.accepted.WithLabelValues(source).Add(float64(ar.Accepted))
	s.metrics.deduplicated.WithLabelValues(source).Add(float64(ar.Duplicates))
	s.metrics.rejected.WithLabelValues(source).Add(float64(len(res.Rejected)))
	out := trackResponse{Accepted: ar.Accepted, Duplicates: ar.Duplicates, Rejected: make([]rejection, 0, len(res.Rejected))}
	for _, rj := range res.Rejected {
		out.Rejected = append(out.Rejected, rejection{Index: rj.Index, Reason: rj.Reason})
	}
	status := http.StatusOK
	switch {
	case len(res.Events) > 0:
		out.Success = true
	case len(res.Rejected) > 0 && res.TooLarge == len(res.Rejected):
		status = http.StatusRequestEntityTooLarge
	case len(res.Rejected) > 0:
		status = http.StatusBadRequest
	default:
		out.Success = true // an empty batch is not an error
	}
	if status != http.StatusOK {
		details := make([]portrait.ErrorDetail, len(out.Rejected))
		for i, rj := range out.Rejected {
			idx := rj.Index
			details[i] = portrait.ErrorDetail{Index: &idx, Reason: rj.Reason}
		}
		code := portrait.EINVALID
		if status == http.StatusRequestEntityTooLarge {
			code = portrait.ETOOLARGE
		}
		writeJSON(w, status, map[string]any{
			"success": false, "accepted": 0, "duplicates": 0, "rejected": out.Rejected,
			"error": map[string]any{"code": code, "message": "no event was accepted; see rejected for the reason of each", "details": details},
		})
		return
	}
	writeJSON(w, status, out)
}
