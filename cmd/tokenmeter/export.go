package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"

	"github.com/tokenmeter/tokenmeter/internal/chx"
	"github.com/tokenmeter/tokenmeter/internal/export"
)

func init() {
	register("export", "write a ClickHouse table, view or query as Parquet, Arrow IPC or CSV (exact decimals)", exportCmd)
}

var plainName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func exportCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	table := fs.String("table", "", "table or view in the tokenmeter database to export whole")
	query := fs.String("query", "", "SQL query to export instead of -table")
	format := fs.String("format", export.FormatParquet, "parquet, arrow or csv")
	out := fs.String("out", "-", "output file; - for standard output")
	cfg, err := loadConfig(fs, args)
	if err != nil {
		return err
	}
	q := *query
	switch {
	case q != "" && *table != "":
		return errors.New("give -table or -query, not both")
	case *table != "":
		if !plainName.MatchString(*table) {
			return fmt.Errorf("-table %q is not a plain table name", *table)
		}
		q = fmt.Sprintf("SELECT * FROM %s.%s", cfg.ClickHouse.Database, *table)
	case q == "":
		return errors.New("give -table NAME or -query SQL")
	}
	conn, err := chx.Open(ctx, cfg.ClickHouse)
	if err != nil {
		return err
	}
	defer conn.Close()
	var w io.Writer = os.Stdout
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	n, err := export.Write(ctx, conn, q, *format, w)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "exported %d rows as %s to %s\n", n, *format, *out)
	return nil
}
