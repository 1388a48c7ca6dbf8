package main

import (
	"context"
	"encoding/json"
	"time"

	"github.com/portrait-cdp/portrait"
)

// Rewrites asked of a node that does not apply (issue 17). Over a shared
// store only the applier may rewrite profiles outside the log's
// application (nodes.go: mayRewrite). A node that does not apply queues
// such an operation in the store (rewriteQueue) and waits for the
// applier's answer, so its caller gets the real answer (the erasure
// receipt, the error) rather than 503; the applier performs the queued
// requests in order as part of its term (serveRewrites).
//
// Exactly once: an applier may die between performing a request and
// writing its answer; the next applier then finds it unanswered. An
// erasure names its receipt when it is queued, and the receipt commits in
// the erasure's own transaction, so a performer that finds the receipt
// stored answers with it instead of erasing again (which would answer
// not_found: the person is gone). A re-scoring is idempotent: it sets each
// listed customer's scores from the stored profile and the current
// boundaries, so performing it again writes nothing (it then reports 0
// rewritten, the one visible difference).

// rewriteQueue is what forwarding needs of a shared store.
type rewriteQueue interface {
	QueueRewrite(ctx context.Context, kind, node string, body []byte) (int64, error)
	PendingRewrites(ctx context.Context, limit int, fn func(id int64, kind string, body []byte) error) error
	FinishRewrite(ctx context.Context, id int64, result []byte) error
	RewriteResult(ctx context.Context, id int64) (result []byte, done bool, err error)
}

// The kinds of rewrite request.
const (
	rewriteErase           = "erase"
	rewriteEraseIdentifier = "erase_identifier"
	rewriteRescore         = "rescore"
)

// rewriteWait is how long a forwarded request waits for the applier before
// its caller is told it stays queued.
const rewriteWait = 60 * time.Second

// rewriteAnswer is the applier's answer: the result or the error.
type rewriteAnswer struct {
	Result  json.RawMessage `json:"result,omitempty"`
	Code    string          `json:"code,omitempty"`
	Message string          `json:"message,omitempty"`
}

type eraseRequest struct {
	// ReceiptID names the erasure's receipt, chosen by the asking node.
	ReceiptID  string               `json:"receipt_id,omitempty"`
	ID         string               `json:"id,omitempty"`
	Identifier *portrait.Identifier `json:"identifier,omitempty"`
	By         string               `json:"by"`
	Reason     string               `json:"reason"`
}

type rescoreRequest struct {
	IDs []string `json:"ids"`
}

// forward queues a request for the applier and waits for its answer,
// decoded into out. Without a queue (a store that has none) it refuses as
// before: 503 naming the reason.
func (a *App) forward(ctx context.Context, kind string, req, out any) error {
	if a.rewrites == nil {
		return a.mayRewrite()
	}
	body, err := json.Marshal(req)
	if err != nil {
		return portrait.Wrap(err, "cannot encode the request")
	}
	id, err := a.rewrites.QueueRewrite(ctx, kind, a.Config.Node, body)
	if err != nil {
		return err
	}
	wait, cancel := context.WithTimeout(ctx, rewriteWait)
	defer cancel()
	for {
		woken := a.DB.Appended()
		res, done, err := a.rewrites.RewriteResult(ctx, id)
		if err != nil {
			return err
		}
		if done {
			var ans rewriteAnswer
			if err := json.Unmarshal(res, &ans); err != nil {
				return portrait.Wrap(err, "cannot read the applier's answer")
			}
			if ans.Code != "" {
				return &portrait.Error{Code: ans.Code, Message: ans.Message}
			}
			if out != nil && len(ans.Result) > 0 {
				if err := json.Unmarshal(ans.Result, out); err != nil {
					return portrait.Wrap(err, "cannot read the applier's answer")
				}
			}
			return nil
		}
		select {
		case <-wait.Done():
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return portrait.Errorf(portrait.EUNAVAILABLE, "queued as request %d for the node applying events, which has not answered within %s: it is performed when a node applies events (docs/scaling.md)", id, rewriteWait)
		case <-woken:
		case <-time.After(time.Second):
		}
	}
}

// serveRewrites performs the queued requests while this node applies,
// until ctx ends (the applier's term).
func (a *App) serveRewrites(ctx context.Context) {
	if a.rewrites == nil {
		return
	}
	for {
		woken := a.DB.Appended()
		err := a.rewrites.PendingRewrites(ctx, 16, func(id int64, kind string, body []byte) error {
			ans := a.performRewrite(ctx, kind, body)
			if ctx.Err() != nil {
				return ctx.Err() // the term ended: the next applier performs it
			}
			res, err := json.Marshal(ans)
			if err != nil {
				return portrait.Wrap(err, "cannot encode the answer")
			}
			return a.rewrites.FinishRewrite(ctx, id, res)
		})
		if err != nil && ctx.Err() == nil {
			a.Log.Warn("queued rewrite requests not performed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-woken:
		case <-time.After(time.Second):
		}
	}
}

// performRewrite performs one request on this node (the applier).
func (a *App) performRewrite(ctx context.Context, kind string, body []byte) rewriteAnswer {
	var result any
	var err error
	switch kind {
	case rewriteErase, rewriteEraseIdentifier:
		var r eraseRequest
		if err = json.Unmarshal(body, &r); err != nil {
			break
		}
		result, err = a.performErasure(ctx, r)
	case rewriteRescore:
		var r rescoreRequest
		if err = json.Unmarshal(body, &r); err != nil {
			break
		}
		result, err = a.Proc.RefreshProfiles(ctx, r.IDs)
	default:
		err = portrait.Errorf(portrait.EINVALID, "unknown rewrite request %q", kind)
	}
	if err != nil {
		return rewriteAnswer{Code: portrait.ErrorCode(err), Message: portrait.ErrorMessage(err)}
	}
	b, err := json.Marshal(result)
	if err != nil {
		return rewriteAnswer{Code: portrait.EINTERNAL, Message: "cannot encode the answer"}
	}
	return rewriteAnswer{Result: b}
}

// The store's and the erasure service's part in performing an erasure
// exactly once: the receipt by its id, and an erasure with a given one.
type (
	erasureReceipts interface {
		ErasureReceipt(ctx context.Context, id string) (*portrait.ErasureReceipt, error)
	}
	receiptEraser interface {
		EraseAs(ctx context.Context, receiptID, id, by, reason string) (*portrait.ErasureReceipt, error)
		EraseByIdentifierAs(ctx context.Context, receiptID string, id portrait.Identifier, by, reason string) (*portrait.ErasureReceipt, error)
	}
)

// performErasure erases as r asks, unless its receipt is stored already:
// then it was done (by an applier that died before answering) and the
// receipt is the answer.
func (a *App) performErasure(ctx context.Context, r eraseRequest) (*portrait.ErasureReceipt, error) {
	if a.eraseHere == nil {
		return nil, portrait.Errorf(portrait.EUNAVAILABLE, "erasure is not wired on node %s", a.Config.Node)
	}
	er, named := a.eraseHere.(receiptEraser)
	if rs, ok := a.DB.(erasureReceipts); ok && named && r.ReceiptID != "" {
		rc, err := rs.ErasureReceipt(ctx, r.ReceiptID)
		if err == nil {
			return rc, nil
		}
		if portrait.ErrorCode(err) != portrait.ENOTFOUND {
			return nil, err
		}
		if r.Identifier != nil {
			return er.EraseByIdentifierAs(ctx, r.ReceiptID, *r.Identifier, r.By, r.Reason)
		}
		return er.EraseAs(ctx, r.ReceiptID, r.ID, r.By, r.Reason)
	}
	if r.Identifier != nil {
		return a.eraseHere.EraseByIdentifier(ctx, *r.Identifier, r.By, r.Reason)
	}
	return a.eraseHere.Erase(ctx, r.ID, r.By, r.Reason)
}
