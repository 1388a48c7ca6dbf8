package http

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/portrait-cdp/portrait"
	"github.com/portrait-cdp/portrait/access"
	"github.com/portrait-cdp/portrait/importer"
	"github.com/portrait-cdp/portrait/internal/datakey"
)

// ImportLookup finds the summary of a finished import (JSON of
// importer.Summary).
type ImportLookup interface {
	ImportSummary(ctx context.Context, id string) ([]byte, error)
	// ImportPage lists summaries, most recently updated first, from an
	// opaque cursor ("" first); next is "" on the last page.
	ImportPage(ctx context.Context, cursor string, limit int) (page [][]byte, next string, err error)
}

// DefaultMaxImportBytes bounds an uploaded file (--max-upload). A customer
// file of a few million rows is tens of MB, a hundred or two gzipped; a
// gigabyte was an invitation to fill the disk.
const DefaultMaxImportBytes = 256 << 20

// imports holds the imports running in this process, for status polling.
type imports struct {
	mu   sync.Mutex
	jobs map[string]*importJob
}

type importJob struct {
	mu  sync.Mutex
	doc map[string]any
}

func (j *importJob) set(doc map[string]any) {
	j.mu.Lock()
	j.doc = doc
	j.mu.Unlock()
}

func (j *importJob) get() map[string]any {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.doc
}

// mountImports adds POST /v1/imports, GET /v1/imports/{id} and
// GET /v1/quality.
func (s *Server) mountImports(mux *http.ServeMux) {
	s.importJobs.jobs = map[string]*importJob{}
	mux.Handle("POST /v1/imports", s.instrument("/v1/imports", s.admin(s.handleImportUpload)))
	mux.Handle("GET /v1/imports/{id}", s.instrument("/v1/imports/{id}", s.admin(s.handleImportStatus)))
	mux.Handle("GET /v1/imports", s.instrument("/v1/imports", s.admin(s.handleImportList)))
	mux.Handle("GET /v1/quality", s.instrument("/v1/quality", s.admin(s.handleQuality)))
}

// handleImportUpload takes a multipart upload (file, source, format,
// optional mapping as a file or a text field), stores the file in a
// temporary file and imports it in the background. The import id derives
// from the source and the file's content, so uploading the same file again
// answers with the same id (and imports nothing new).
func (s *Server) handleImportUpload(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	if s.Importer == nil {
		Error(w, r, portrait.Errorf(portrait.EUNAVAILABLE, "imports are not enabled on this server"))
		return
	}
	max := s.MaxImportBytes
	if max <= 0 {
		max = DefaultMaxImportBytes
	}
	r.Body = http.MaxBytesReader(w, r.Body, max+1<<20)
	mr, err := r.MultipartReader()
	if err != nil {
		Error(w, r, portrait.Errorf(portrait.EINVALID, "send multipart/form-data with fields file, source, format and optionally mapping"))
		return
	}
	var source, format, fileName, tmp, hash string
	var mapping []byte
	defer func() {
		if tmp != "" && hash == "" {
			os.Remove(tmp) // the import did not start
		}
	}()
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			Error(w, r, uploadErr(err))
			return
		}
		switch part.FormName() {
		case "source":
			source, err = smallField(part)
		case "format":
			format, err = smallField(part)
		case "mapping":
			var b []byte
			b, err = io.ReadAll(io.LimitReader(part, 1<<20))
			mapping = b
		case "file":
			if tmp != "" {
				err = portrait.Errorf(portrait.EINVALID, "one file per import")
				break
			}
			fileName = filepath.Base(part.FileName())
			tmp, err = s.saveUpload(part, max)
		default:
			err = portrait.Errorf(portrait.EINVALID, "unexpected form field %q (want file, source, format, mapping)", part.FormName())
		}
		part.Close()
		if err != nil {
			Error(w, r, uploadErr(err))
			return
		}
	}
	source = strings.TrimSpace(source)
	if source == "" || tmp == "" {
		Error(w, r, portrait.Errorf(portrait.EINVALID, "an import needs the fields source and file"))
		return
	}
	if portrait.IsSystemSource(source) {
		Error(w, r, portrait.Errorf(portrait.EINVALID, "source %q is reserved for Portrait's own events", source))
		return
	}
	if format == "" {
		format = formatFromName(fileName)
	}
	in := importer.Input{Name: fileName, Open: func() (io.ReadCloser, error) { return s.openUpload(tmp) }}
	var m *importer.Mapping
	if len(mapping) > 0 {
		m, err = importer.ParseMapping(mapping)
	} else {
		m, err = importer.InferMapping(in, format)
		if errors.Is(err, importer.ErrNoIdentity) {
			err = portrait.Errorf(portrait.EINVALID, "%s: send it as the form field \"mapping\" (a file or text)", portrait.ErrorMessage(err))
		}
	}
	if err != nil {
		Error(w, r, err)
		return
	}
	if hash, err = s.uploadHash(tmp); err != nil {
		Error(w, r, portrait.Wrap(err, "cannot read the upload"))
		return
	}
	id := importer.ImportID(source, hash)
	view := m.View()
	s.importJobs.mu.Lock()
	job, running := s.importJobs.jobs[id]
	if !running {
		job = &importJob{doc: map[string]any{"id": id, "source": source, "file": fileName, "state": "queued", "mapping": view}}
		s.importJobs.jobs[id] = job
	}
	s.importJobs.mu.Unlock()
	if running {
		os.Remove(tmp)
		writeJSON(w, http.StatusAccepted, maskImport(r, job.get()))
		return
	}
	opt := importer.Options{ID: id, Source: source, Format: format, Mapping: m}
	opt.Progress = func(p importer.Progress) {
		job.set(map[string]any{"id": id, "source": source, "file": fileName, "state": importer.StateRunning, "phase": p.Phase,
			"total_rows": p.TotalRows, "rows": p.Rows, "accepted": p.Accepted, "duplicates": p.Duplicates, "suppressed": p.Suppressed,
			"quarantined": p.Quarantined, "reasons": p.Reasons, "mapping": view})
	}
	// The import outlives the request; it is owned by the server, which
	// stops it and waits for it at Close. An interrupted import resumes when
	// the same file is uploaded again: its rows keep their message ids.
	s.importWG.Add(1)
	go func() {
		defer s.importWG.Done()
		defer os.Remove(tmp)
		sum, err := s.Importer.Import(s.importCtx(), in, opt)
		doc := map[string]any{"id": id, "source": source, "file": fileName, "state": importer.StateFailed, "mapping": view}
		if sum != nil {
			b, _ := json.Marshal(sum)
			json.Unmarshal(b, &doc)
		}
		if err != nil {
			doc["state"] = importer.StateFailed
			doc["error"] = portrait.ErrorMessage(err)
			s.Log.Warn("import failed", "id", id, "source", source, "err", err)
		}
		job.set(doc)
		// Finished imports are answered from the store when it keeps them;
		// failed ones that never started stay here to be read.
		if sum != nil && s.ImportRuns != nil {
			s.importJobs.mu.Lock()
			delete(s.importJobs.jobs, id)
			s.importJobs.mu.Unlock()
		}
	}()
	w.Header().Set("Location", "/v1/imports/"+id)
	writeJSON(w, http.StatusAccepted, map[string]any{"id": id, "state": "queued", "status_url": "/v1/imports/" + id, "mapping": view})
}

func (s *Server) handleImportStatus(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	id := r.PathValue("id")
	s.importJobs.mu.Lock()
	job := s.importJobs.jobs[id]
	s.importJobs.mu.Unlock()
	if job != nil {
		doc := maps.Clone(job.get()) // the job's map is shared with its goroutine
		if err := s.importDuplicates(r.Context(), doc); err != nil {
			Error(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, maskImport(r, doc))
		return
	}
	if s.ImportRuns == nil {
		Error(w, r, portrait.Errorf(portrait.ENOTFOUND, "no import %q", id))
		return
	}
	b, err := s.ImportRuns.ImportSummary(r.Context(), id)
	if err != nil {
		Error(w, r, err)
		return
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		Error(w, r, portrait.Wrap(err, "cannot decode the import summary"))
		return
	}
	if err := s.importDuplicates(r.Context(), doc); err != nil {
		Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, maskImport(r, doc))
}

// handleImportList pages the recorded imports, most recently updated first;
// an import running in this process shows its live progress.
func (s *Server) handleImportList(w http.ResponseWriter, r *http.Request, _ *portrait.Key) {
	limit, err := queryInt(r, "limit", 50)
	if err != nil {
		Error(w, r, err)
		return
	}
	limit = min(max(limit, 1), 500)
	if s.ImportRuns == nil {
		writeJSON(w, http.StatusOK, map[string]any{"imports": []any{}})
		return
	}
	page, next, err := s.ImportRuns.ImportPage(r.Context(), r.URL.Query().Get("cursor"), limit)
	if err != nil {
		Error(w, r, err)
		return
	}
	out := make([]any, 0, len(page))
	for _, b := range page {
		var doc map[string]any
		if err := json.Unmarshal(b, &doc); err != nil {
			continue
		}
		id, _ := doc["id"].(string)
		s.importJobs.mu.Lock()
		job := s.importJobs.jobs[id]
		s.importJobs.mu.Unlock()
		if job != nil {
			doc = job.get()
		}
		out = append(out, doc)
	}
	body := map[string]any{"imports": maskImport(r, out)}
	if next != "" {
		body["next"] = next
	}
	writeJSON(w, http.StatusOK, body)
}

// UploadSealer seals an upload's temporary file while it is imported
// (datakey.Ring: a stream of sealed chunks), so that the rows it carries
// are not on disk in clear; nil keeps it as sent.
type UploadSealer interface {
	NewStreamWriter(w io.Writer, label string) (io.WriteCloser, error)
	OpenStream(r io.Reader, label string) (io.Reader, error)
}

func (s *Server) saveUpload(part *multipart.Part, max int64) (string, error) {
	f, err := os.CreateTemp(s.ImportDir, "portrait-import-*")
	if err != nil {
		return "", portrait.Wrap(err, "cannot store the upload")
	}
	var dst io.Writer = f
	var sw io.WriteCloser
	if s.UploadSealer != nil {
		if sw, err = s.UploadSealer.NewStreamWriter(f, datakey.BlobUpload); err != nil {
			f.Close()
			os.Remove(f.Name())
			return "", portrait.Wrap(err, "cannot store the upload")
		}
		dst = sw
	}
	n, err := io.Copy(dst, io.LimitReader(part, max+1))
	if sw != nil && err == nil {
		err = sw.Close()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	if n > max {
		os.Remove(f.Name())
		return "", portrait.Errorf(portrait.ETOOLARGE, "the file is over the %d-byte upload limit; import it with portrait import on the server", max)
	}
	return f.Name(), nil
}

func uploadErr(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return portrait.Errorf(portrait.ETOOLARGE, "the upload is over the size limit")
	}
	var pe *portrait.Error
	if errors.As(err, &pe) {
		return err
	}
	return portrait.Errorf(portrait.EINVALID, "cannot read the upload: %v", err)
}

func smallField(p *multipart.Part) (string, error) {
	b, err := io.ReadAll(io.LimitReader(p, 4096))
	return strings.TrimSpace(string(b)), err
}

// openUpload reads an upload's temporary file as it was sent.
func (s *Server) openUpload(path string) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil || s.UploadSealer == nil {
		return f, err
	}
	r, err := s.UploadSealer.OpenStream(f, datakey.BlobUpload)
	if err != nil {
		f.Close()
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{r, f}, nil
}

// uploadHash is the SHA-256 of the upload as sent (the import's id
// derives from it, so a file sent again is the same import).
func (s *Server) uploadHash(path string) (string, error) {
	f, err := s.openUpload(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func formatFromName(name string) string {
	n := strings.TrimSuffix(strings.ToLower(name), ".gz")
	switch {
	case strings.HasSuffix(n, ".xlsx"):
		return importer.FormatXLSX
	case strings.HasSuffix(n, ".jsonl"), strings.HasSuffix(n, ".ndjson"), strings.HasSuffix(n, ".json"):
		return importer.FormatJSONL
	}
	return importer.FormatCSV
}

// maskImport masks the personal values an import summary quotes — the
// examples of refused values and the identifiers probable duplicates
// share — by the caller's clearance. The import routes are not personal
// routes (their own fields would be mistaken for traits), so the summary's
// values are masked here, where their fields are known (issue 15).
func maskImport(r *http.Request, v any) any {
	ac := accessOf(r.Context())
	if ac == nil || ac.m == nil {
		return v
	}
	// A JSON round trip gives a private copy (a running job's map is
	// shared with its goroutine) in one shape, live or stored.
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var doc any
	if dec.Decode(&doc) != nil {
		return v
	}
	maskImportValues(ac.m, doc)
	return doc
}

func maskImportValues(m *access.Masker, v any) {
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			maskImportValues(m, e)
		}
	case map[string]any:
		for k, e := range x {
			switch k {
			case "examples":
				items, _ := e.([]any)
				for _, it := range items {
					ex, ok := it.(map[string]any)
					if !ok || ex["value"] == nil {
						continue
					}
					// "trait:phone", "identifier:id_card", "property:x": the
					// field's level is its name's. A field of unknown level
					// is masked as secret: an example is a refused value,
					// whatever it was meant to be.
					field, _ := ex["field"].(string)
					_, name, _ := strings.Cut(field, ":")
					name = cmp.Or(name, field)
					if !known(m, name) {
						if !m.P.Sees(access.Secret) {
							ex["value"] = access.MaskValue(name, ex["value"])
						}
						continue
					}
					pair := map[string]any{"field": name, "value": ex["value"]}
					m.Walk(pair)
					ex["value"] = pair["value"]
				}
			case "probable_duplicates":
				m.Walk(e) // {type, value} pairs, masked by the identifier's level
			default:
				maskImportValues(m, e)
			}
		}
	}
}

func known(m *access.Masker, name string) bool {
	if _, ok := m.C.Trait(name); ok {
		return true
	}
	_, ok := m.C.Identifier(name)
	return ok
}
