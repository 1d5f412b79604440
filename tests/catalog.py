"""A database's schema as comparable text, read from the catalog.

Every line describes one object of the public schema through PostgreSQL's own
deparsers (``pg_get_constraintdef``, ``pg_get_indexdef``, ``pg_get_triggerdef``,
``pg_get_functiondef``), so two databases are equal when their lines are, whatever
order or path built them. yoyo's bookkeeping tables are left out.
"""

from __future__ import annotations

import psycopg

# yoyo's tables, and their indexes and sequences.
_YOYO = "'^(_yoyo_|yoyo_lock)'"

CATALOG_SQL = f"""
WITH rels AS (
    -- A NULL ACL means the default one; REVOKE leaves the default written out.
    SELECT c.oid, c.relname, c.relkind, c.relrowsecurity, c.relforcerowsecurity,
           coalesce(c.relacl, acldefault(
               CASE c.relkind WHEN 'S' THEN 's'::"char" ELSE 'r'::"char" END, c.relowner
           )) AS relacl
    FROM pg_class AS c
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relname !~ {_YOYO}
)
SELECT format('relation %s kind=%s rls=%s force=%s acl=%s',
              relname, relkind, relrowsecurity, relforcerowsecurity, relacl)
FROM rels
UNION ALL
SELECT format('column %s.%s #%s %s notnull=%s default=%s identity=%s acl=%s comment=%s',
              r.relname, a.attname, a.attnum, format_type(a.atttypid, a.atttypmod),
              a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attidentity,
              -- Column-level privileges (GRANT INSERT (col) ...): NULL when none.
              a.attacl, col_description(r.oid, a.attnum))
FROM rels AS r
JOIN pg_attribute AS a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_attrdef AS d ON d.adrelid = r.oid AND d.adnum = a.attnum
WHERE r.relkind IN ('r', 'p')
UNION ALL
SELECT format('constraint %s %s: %s validated=%s',
              r.relname, co.conname, pg_get_constraintdef(co.oid), co.convalidated)
FROM pg_constraint AS co JOIN rels AS r ON r.oid = co.conrelid
UNION ALL
SELECT format('index %s', pg_get_indexdef(i.indexrelid))
FROM pg_index AS i JOIN rels AS r ON r.oid = i.indrelid
UNION ALL
SELECT format('trigger %s', pg_get_triggerdef(t.oid))
FROM pg_trigger AS t JOIN rels AS r ON r.oid = t.tgrelid
WHERE NOT t.tgisinternal
UNION ALL
SELECT format('sequence %s %s start=%s inc=%s', s.sequencename, s.data_type,
              s.start_value, s.increment_by)
FROM pg_sequences AS s WHERE s.schemaname = 'public'
UNION ALL
SELECT format('function %s', pg_get_functiondef(p.oid))
FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
WHERE n.nspname = 'public'
UNION ALL
SELECT format('policy %s %s %s %s using=%s check=%s',
              tablename, policyname, cmd, roles, qual, with_check)
FROM pg_policies WHERE schemaname = 'public'
UNION ALL
SELECT format('comment %s: %s', r.relname, obj_description(r.oid, 'pg_class'))
FROM rels AS r WHERE obj_description(r.oid, 'pg_class') IS NOT NULL
ORDER BY 1
"""


def snapshot(dsn: str) -> list[str]:
    """The schema of the database at ``dsn``, one sorted line per object."""
    with psycopg.connect(dsn) as conn:
        return [row[0] for row in conn.execute(CATALOG_SQL)]


def user_tables(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            f"SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename !~ {_YOYO}"
        ).fetchall()
    return {r[0] for r in rows}
