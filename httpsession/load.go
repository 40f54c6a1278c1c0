package httpsession

import (
	"context"
	"fmt"
)

// Load returns a copy of ctx holding the session that token names, for
// code outside an HTTP handler: a websocket connection's messages, a gRPC
// call, a background job. The Manager's methods then work on that context
// as they do on a request's, and Commit saves the changes and returns the
// token to hand back to the client, which may be new after a Login or a
// RenewToken. It has scs's shape.
//
// As in Handler, a token naming no live session (empty, unknown, expired,
// forged) is not adopted: the context holds no session, and the first
// value put creates a fresh one at Commit. Load returns an error, and a nil
// context, only if the store fails. It never applies Options.CreateLimit,
// LabelFunc or FingerprintFunc, which need a request, so a session bound
// to a fingerprint is not found here.
func (m *Manager) Load(ctx context.Context, token string) (context.Context, error) {
	st := &state{m: m}
	if token != "" {
		st.presented = true
		s, err := m.store.Find(ctx, token, nil)
		switch {
		case err == nil:
			st.sess = s
		case !isNotFound(err):
			return nil, fmt.Errorf("httpsession: loading session: %w", err)
		}
	}
	st.parent = ctx
	return st, nil
}
