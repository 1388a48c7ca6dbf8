package sqlite

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/portrait-cdp/portrait"
)

// A backup is a gzip-compressed tar archive: manifest.json first, then a
// consistent copy of each database and the data directory's small files.
// The copies are made with VACUUM INTO, which reads one snapshot of the
// database inside a read transaction: a server running on the directory
// goes on appending and processing meanwhile, and nothing it has not yet
// committed is copied.

// BackupFormat is the version of the archive layout.
const BackupFormat = 1

// BackupManifest describes a backup archive.
type BackupManifest struct {
	Format    int          `json:"format"`
	Version   string       `json:"portrait_version"`
	CreatedAt time.Time    `json:"created_at"`
	Files     []BackupFile `json:"files"`
	// LogSeq is the last event in the copied log; StateSeq the last event
	// the copied state had applied. StateSeq ≤ LogSeq always: the state is
	// copied first, so the log copy holds every event it reflects, and a
	// restored server applies the events after StateSeq when it starts.
	LogSeq   int64 `json:"log_seq"`
	StateSeq int64 `json:"state_seq"`
	Events   int64 `json:"events"`
	Profiles int64 `json:"profiles"`
}

// BackupFile is one file in the archive, with its digest.
type BackupFile struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// backupDBs are the databases in the order they are copied: the derived
// state before the log (see BackupManifest.StateSeq).
var backupDBs = []string{"state.db", "events.db"}

// backupSkip are the files of a data directory never copied: the lock,
// SQLite's transient files (their content is in the copies), and what a
// recovery moved aside.
func backupSkip(name string) bool {
	return name == "LOCK" || strings.HasSuffix(name, "-wal") || strings.HasSuffix(name, "-shm") ||
		strings.HasSuffix(name, "-journal") || strings.Contains(name, ".damaged") || strings.Contains(name, ".moved") ||
		strings.HasPrefix(name, ".")
}

// Backup writes a consistent copy of the store under dir to w. It needs no
// lock on dir: it may run beside the server that owns it. tmp is a
// directory for the intermediate copies (the archive's own directory is a
// good choice: the copies are as large as the databases).
func Backup(ctx context.Context, dir, tmp string, w io.Writer, now portrait.Clock) (*BackupManifest, error) {
	for _, name := range backupDBs {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return nil, portrait.Errorf(portrait.EINVALID, "%s holds no Portrait store (%s: %v)", dir, name, errors.Unwrap(err))
		}
	}
	work, err := os.MkdirTemp(tmp, ".portrait-backup-")
	if err != nil {
		return nil, portrait.Wrap(err, "cannot create a directory for the copies")
	}
	defer os.RemoveAll(work)

	m := &BackupManifest{Format: BackupFormat, Version: portrait.Version, CreatedAt: now().UTC()}
	for _, name := range backupDBs {
		if err := vacuumInto(ctx, filepath.Join(dir, name), filepath.Join(work, name)); err != nil {
			return nil, err
		}
	}
	if err := m.readSeqs(ctx, work); err != nil {
		return nil, err
	}

	// The small files beside the databases (the demo's keys, say), read
	// after the copies: none of them is derived from the databases.
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot list the data directory")
	}
	var extra []string
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || backupSkip(name) || name == backupDBs[0] || name == backupDBs[1] {
			continue
		}
		extra = append(extra, name)
	}
	sort.Strings(extra)

	paths := map[string]string{}
	for _, name := range backupDBs {
		paths[name] = filepath.Join(work, name)
	}
	for _, name := range extra {
		paths[name] = filepath.Join(dir, name)
	}
	names := append(append([]string{}, backupDBs...), extra...)
	for _, name := range names {
		f, err := fileDigest(paths[name])
		if err != nil {
			return nil, err
		}
		f.Name = name
		m.Files = append(m.Files, f)
	}

	zw := gzip.NewWriter(w)
	tw := tar.NewWriter(zw)
	mb, _ := json.MarshalIndent(m, "", "  ")
	if err := tw.WriteHeader(&tar.Header{Name: "manifest.json", Mode: 0o600, Size: int64(len(mb)), ModTime: m.CreatedAt}); err != nil {
		return nil, portrait.Wrap(err, "cannot write the backup")
	}
	if _, err := tw.Write(mb); err != nil {
		return nil, portrait.Wrap(err, "cannot write the backup")
	}
	for _, f := range m.Files {
		if err := tarFile(tw, paths[f.Name], f, m.CreatedAt); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, portrait.Wrap(err, "cannot write the backup")
	}
	if err := zw.Close(); err != nil {
		return nil, portrait.Wrap(err, "cannot write the backup")
	}
	return m, nil
}

// vacuumInto copies the database at src to dst from one read snapshot.
func vacuumInto(ctx context.Context, src, dst string) error {
	q := url.Values{}
	q.Add("mode", "ro")
	q.Add("_pragma", "busy_timeout(10000)")
	d, err := sql.Open("sqlite", "file:"+src+"?"+q.Encode())
	if err != nil {
		return portrait.Wrap(err, "cannot open "+filepath.Base(src))
	}
	defer d.Close()
	// VACUUM INTO takes no bound parameter; the path is quoted as an SQL
	// string literal.
	lit := "'" + strings.ReplaceAll(dst, "'", "''") + "'"
	if _, err := d.ExecContext(ctx, "VACUUM INTO "+lit); err != nil {
		return portrait.Wrap(err, "cannot copy "+filepath.Base(src))
	}
	return nil
}

// readSeqs reads the copies' positions and counts, and checks that the
// state does not claim events the log copy lacks.
func (m *BackupManifest) readSeqs(ctx context.Context, work string) error {
	open := func(name string) (*sql.DB, error) {
		d, err := sql.Open("sqlite", "file:"+filepath.Join(work, name)+"?mode=ro")
		if err != nil {
			return nil, portrait.Wrap(err, "cannot open the copy of "+name)
		}
		return d, nil
	}
	logDB, err := open("events.db")
	if err != nil {
		return err
	}
	defer logDB.Close()
	if err := logDB.QueryRowContext(ctx, "SELECT coalesce(max(seq), 0), count(*) FROM events").Scan(&m.LogSeq, &m.Events); err != nil {
		return portrait.Wrap(err, "cannot read the copied log")
	}
	stateDB, err := open("state.db")
	if err != nil {
		return err
	}
	defer stateDB.Close()
	// A checkpoint names the last log event the state has applied.
	if err := stateDB.QueryRowContext(ctx, "SELECT coalesce(max(seq), 0) FROM checkpoints").Scan(&m.StateSeq); err != nil {
		return portrait.Wrap(err, "cannot read the copied state")
	}
	if err := stateDB.QueryRowContext(ctx, "SELECT count(*) FROM profiles").Scan(&m.Profiles); err != nil {
		return portrait.Wrap(err, "cannot read the copied state")
	}
	if m.StateSeq > m.LogSeq {
		return portrait.Errorf(portrait.EINTERNAL, "the copied state has applied event %d but the copied log ends at %d", m.StateSeq, m.LogSeq)
	}
	return nil
}

func fileDigest(path string) (BackupFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return BackupFile{}, portrait.Wrap(err, "cannot read "+filepath.Base(path))
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return BackupFile{}, portrait.Wrap(err, "cannot read "+filepath.Base(path))
	}
	return BackupFile{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

func tarFile(tw *tar.Writer, path string, f BackupFile, mod time.Time) error {
	in, err := os.Open(path)
	if err != nil {
		return portrait.Wrap(err, "cannot read "+f.Name)
	}
	defer in.Close()
	if err := tw.WriteHeader(&tar.Header{Name: f.Name, Mode: 0o600, Size: f.Size, ModTime: mod}); err != nil {
		return portrait.Wrap(err, "cannot write the backup")
	}
	// The size was taken when digesting; a small file changed since then
	// (none of them is written by a running server) fails here rather than
	// producing an archive whose digest lies.
	if n, err := io.Copy(tw, io.LimitReader(in, f.Size)); err != nil || n != f.Size {
		return portrait.Errorf(portrait.EINTERNAL, "cannot copy %s into the backup (%d of %d bytes): %v", f.Name, n, f.Size, err)
	}
	return nil
}

// Restore unpacks a backup into dir, which must not hold a store (an empty
// or missing directory). Every file is checked against the manifest before
// any is put in place; the store opens normally afterwards and applies the
// events the state had not yet applied.
func Restore(ctx context.Context, r io.Reader, dir string) (*BackupManifest, error) {
	// The store's files hold personal data: owner-only, as Open makes it.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, portrait.Wrap(err, "cannot create the data directory")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, portrait.Wrap(err, "cannot list the data directory")
	}
	for _, e := range entries {
		if !backupSkip(e.Name()) {
			return nil, portrait.Errorf(portrait.ECONFLICT, "%s is not empty (%s): restore into a new directory, then move it into place", dir, e.Name())
		}
	}
	work, err := os.MkdirTemp(dir, ".restore-")
	if err != nil {
		return nil, portrait.Wrap(err, "cannot unpack the backup")
	}
	defer os.RemoveAll(work)

	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, portrait.Errorf(portrait.EINVALID, "not a Portrait backup (not gzip: %v)", err)
	}
	tr := tar.NewReader(zr)
	var m *BackupManifest
	want := map[string]BackupFile{}
	got := map[string]bool{}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, portrait.Errorf(portrait.EINVALID, "the backup is damaged: %v", err)
		}
		if m == nil {
			if h.Name != "manifest.json" || h.Size > 1<<20 {
				return nil, portrait.Errorf(portrait.EINVALID, "not a Portrait backup (it does not start with its manifest)")
			}
			m = &BackupManifest{}
			if err := json.NewDecoder(io.LimitReader(tr, h.Size)).Decode(m); err != nil {
				return nil, portrait.Errorf(portrait.EINVALID, "the backup's manifest is damaged: %v", err)
			}
			if m.Format != BackupFormat {
				return nil, portrait.Errorf(portrait.EINVALID, "backup format %d is not supported (this version reads %d)", m.Format, BackupFormat)
			}
			for _, f := range m.Files {
				want[f.Name] = f
			}
			continue
		}
		f, ok := want[h.Name]
		// Names come from the archive: only the manifest's plain file
		// names are written, never a path.
		if !ok || got[h.Name] || h.Name != filepath.Base(h.Name) || h.Typeflag != tar.TypeReg {
			return nil, portrait.Errorf(portrait.EINVALID, "the backup holds %q, which its manifest does not list", h.Name)
		}
		if err := unpackFile(tr, filepath.Join(work, h.Name), f); err != nil {
			return nil, err
		}
		got[h.Name] = true
	}
	if m == nil {
		return nil, portrait.Errorf(portrait.EINVALID, "not a Portrait backup (empty)")
	}
	for name := range want {
		if !got[name] {
			return nil, portrait.Errorf(portrait.EINVALID, "the backup is incomplete: %s is missing", name)
		}
	}
	for _, name := range backupDBs {
		if !got[name] {
			return nil, portrait.Errorf(portrait.EINVALID, "the backup holds no %s", name)
		}
	}
	for _, f := range m.Files {
		if err := os.Rename(filepath.Join(work, f.Name), filepath.Join(dir, f.Name)); err != nil {
			return nil, portrait.Wrap(err, "cannot put "+f.Name+" in place")
		}
	}
	return m, syncDir(dir)
}

func unpackFile(r io.Reader, path string, f BackupFile) error {
	out, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return portrait.Wrap(err, "cannot unpack "+f.Name)
	}
	h := sha256.New()
	src := &readErr{r: io.LimitReader(r, f.Size+1)}
	n, err := io.Copy(io.MultiWriter(out, h), src)
	if src.err != nil {
		out.Close()
		return portrait.Errorf(portrait.EINVALID, "the backup is damaged: %s: %v", f.Name, src.err)
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return portrait.Wrap(err, "cannot unpack "+f.Name)
	}
	if n != f.Size || hex.EncodeToString(h.Sum(nil)) != f.SHA256 {
		return portrait.Errorf(portrait.EINVALID, "the backup is damaged: %s does not match its digest", f.Name)
	}
	return nil
}

// readErr remembers a read error, to tell a damaged archive from a
// failing disk.
type readErr struct {
	r   io.Reader
	err error
}

func (r *readErr) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		r.err = err
	}
	return n, err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return portrait.Wrap(err, "cannot sync the data directory")
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, fs.ErrInvalid) {
		return portrait.Wrap(err, "cannot sync the data directory")
	}
	return nil
}

// String summarises a manifest for people.
func (m *BackupManifest) String() string {
	var size int64
	for _, f := range m.Files {
		size += f.Size
	}
	return fmt.Sprintf("%d events (last %d), %d profiles (applied up to %d), %d files, %d bytes before compression",
		m.Events, m.LogSeq, m.Profiles, m.StateSeq, len(m.Files), size)
}
