package sqlite

import (
	"context"
	"database/sql"
	"sync"
	"time"
)

// checkpointer copies a database's write-ahead log back into the database
// file on its own connection and goroutine. SQLite's automatic checkpoint
// runs inside the commit that crosses its threshold, so the writer (the
// group commit of the log, the processor's state writer) would stop to do
// it; here it overlaps their work. A PASSIVE checkpoint never waits for
// readers or the writer: what it cannot copy now, the next one does.
type checkpointer struct {
	db    *sql.DB
	every time.Duration
	stop  chan struct{}
	wg    sync.WaitGroup
}

func newCheckpointer(db *sql.DB, every time.Duration) *checkpointer {
	c := &checkpointer{db: db, every: every, stop: make(chan struct{})}
	c.wg.Add(1)
	go c.run()
	return c
}

func (c *checkpointer) run() {
	defer c.wg.Done()
	t := time.NewTicker(c.every)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			// A failure (the file is busy, the disk is full) leaves the
			// log growing until a later checkpoint succeeds; nothing is
			// lost, and the writers report disk errors themselves.
			c.db.ExecContext(context.Background(), `PRAGMA wal_checkpoint(PASSIVE)`)
		}
	}
}

// close stops the goroutine and checkpoints what is left, truncating the
// log, so a closed store is one file again.
func (c *checkpointer) close() error {
	close(c.stop)
	c.wg.Wait()
	_, err := c.db.ExecContext(context.Background(), `PRAGMA wal_checkpoint(TRUNCATE)`)
	if cerr := c.db.Close(); err == nil {
		err = cerr
	}
	return err
}
