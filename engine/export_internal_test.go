package engine

// reapNow reaps as the janitor would at the engine's clock and returns how
// many entries it removed.
func (e *Engine) reapNow() int {
	n, _ := e.reap(e.now())
	return n
}

// sessions returns the live sessions as All yields them.
func (e *Engine) sessions() []Session {
	var out []Session
	for _, s := range e.All() {
		out = append(out, s)
	}
	return out
}
