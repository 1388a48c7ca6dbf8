package profile

// SetYield makes p's next batches leave a core to acknowledgements, as Run
// does while events arrive.
func SetYield(p *Processor, v bool) { p.yield.Store(v) }
