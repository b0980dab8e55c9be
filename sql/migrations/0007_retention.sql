-- Raw pages keep the bytes as served, with the charset decision; old pages can be pruned.
-- Never edit once landed: add 0008_*.sql.

-- 1. The bytes as served (after Content-Encoding), gzip-compressed, so a re-extraction can decode
--    them again with a corrected charset; and the decision taken at fetch time: `charset` (the
--    column already there) and where it came from. A new row keeps only these (`html_gz`, the
--    decoded page as UTF-8, would double the largest table for nothing); rows from before keep
--    their `html_gz` and no `raw_gz`. Every row has one or the other. The checks are NOT VALID:
--    adding them scans nothing (the rows already there all have html_gz), and they hold for every
--    row written from now on.
ALTER TABLE raw_pages
    ALTER COLUMN html_gz DROP NOT NULL,
    ADD COLUMN raw_gz bytea,
    ADD COLUMN charset_source text,
    ADD CONSTRAINT raw_pages_charset_source_check
        CHECK (charset_source IN ('bom', 'header', 'meta', 'detected', 'fallback', 'override')) NOT VALID,
    ADD CONSTRAINT raw_pages_kept_check CHECK (raw_gz IS NOT NULL OR html_gz IS NOT NULL) NOT VALID;

COMMENT ON COLUMN raw_pages.raw_gz IS 'gzip of the page bytes as served (after Content-Encoding)';
COMMENT ON COLUMN raw_pages.charset IS 'the charset the page was decoded with';
COMMENT ON COLUMN raw_pages.charset_source IS 'where charset came from: bom, header, meta, detected, fallback, override';
COMMENT ON COLUMN raw_pages.html_gz IS 'rows before 0007 only: gzip of the decoded page as UTF-8';
COMMENT ON COLUMN raw_pages.size_bytes IS 'bytes of the page as served (rows before 0007: of the decoded page as UTF-8)';

-- 2. `newsroom prune` deletes raw pages by age, oldest first, in small batches.
CREATE INDEX raw_pages_fetched_idx ON raw_pages (fetched_at);
