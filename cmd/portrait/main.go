// Command portrait is Portrait's one binary: the server, the demo, and the
// tools around them. main wires everything explicitly; nothing registers
// itself.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/portrait-cdp/portrait"
)

const usage = `portrait — customer profiling platform (客户画像平台)

usage: portrait <command> [flags]

commands:
  serve     run the server (embedded SQLite store under --data; or several nodes:
            --store postgres://… --bus nats://… --role ingest,process|api, docs/scaling.md)
  demo      generate a realistic bilingual demo data set and serve it
  rebuild   rebuild all profiles by replaying the event log, and verify them
  keys      create, list and revoke credentials (keys create --kind write|admin --name NAME); rotate-data-key
  audit     verify the audit log's hash chain (audit verify)
  bench     benchmarks (bench ingest, segments, map, insight, accounts, nodes)
  linkage   record linkage (linkage eval)
  analyze   analyses over files: kmeans, fpgrowth, clv, churn, rfm
  quality   the data-quality report (per source and per trait)
  templates industry templates: scorecard, tags, segments (templates list | templates load NAME)
  import    import a CSV, JSONL or XLSX file (import --source NAME --map mapping.yaml FILE)
  backup    back up the embedded store, also while it serves (backup --data DIR --to FILE)
  restore   restore a backup into a new data directory (restore --from FILE --data DIR)
  migrate   move an embedded deployment to PostgreSQL (migrate --data DIR --to postgres://…)
  version   print the version

Run "portrait <command> -h" for a command's flags. Every command takes --json.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "portrait:", portrait.ErrorMessage(err))
			if portrait.ErrorCode(err) == portrait.EINTERNAL {
				fmt.Fprintln(os.Stderr, "  cause:", err)
			}
		}
		os.Exit(1)
	}
}

// errUsage is returned after usage was already printed.
var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, stdout, stderr, false)
	case "demo":
		return runServe(ctx, rest, stdout, stderr, true)
	case "rebuild":
		return runRebuild(ctx, rest, stdout, stderr)
	case "keys":
		return runKeys(ctx, rest, stdout, stderr)
	case "audit":
		return runAudit(ctx, rest, stdout, stderr)
	case "bench":
		return runBench(ctx, rest, stdout, stderr)
	case "linkage":
		return runLinkage(ctx, rest, stdout, stderr)
	case "analyze":
		return runAnalyze(ctx, rest, stdout, stderr)
	case "import":
		return runImport(ctx, rest, stdout, stderr)
	case "quality":
		return runQuality(ctx, rest, stdout, stderr)
	case "backup":
		return runBackup(ctx, rest, stdout, stderr)
	case "restore":
		return runRestore(ctx, rest, stdout, stderr)
	case "migrate": // PostgreSQL migration (issue 17 §7): cmd/portrait/migrate.go
		return runMigrate(ctx, rest, stdout, stderr)
	case "templates": // industry templates (issue 16): cmd/portrait/accounts.go
		return runTemplates(ctx, rest, stdout, stderr)
	case "version", "--version", "-v":
		return runVersion(rest, stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprintf(stderr, "portrait: unknown command %q\n\n%s", cmd, usage)
	return errUsage
}
