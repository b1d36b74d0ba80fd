"""Fill a Pulp instance's database with the rows of many real pushes, in bulk SQL (issue 14).

    .venv/bin/python benchmarks/scale_data.py --data-dir /tmp/big                # 1M blobs
    .venv/bin/python benchmarks/scale_data.py --data-dir /tmp/big --blobs 1000 \\
        --manifests 100 --repositories 10 --prefix tiny                          # a few seconds

The instance's PostgreSQL must run (``scripts/run.sh`` or ``scripts/postgres.sh start``); the
script reads its ``settings.py`` and writes through Django's connection, in one transaction.

What one push writes (dumped from a skopeo push to a fresh instance), repeated in bulk:

- per blob: a pulpcore ``Artifact`` (sha256 only, as ``ALLOWED_CONTENT_CHECKSUMS``), a ``Content``
  (``container.blob``), a ``ContentArtifact`` (``relative_path`` = the digest), a ``Blob``, and a
  ``BlobTransfer`` record per repository it reached (``uploaded``, or ``mounted`` for a shared
  base layer);
- per manifest: a ``Content`` and a ``Manifest`` whose ``data`` is the real JSON document (its
  digest is the sha256 of those bytes), its config blob, one ``BlobManifest`` link per layer;
  two ``Tag`` units, ``v<k>`` and ``latest`` (the previous ``latest`` leaves the repository in
  the same version, ``version_removed``);
- per push: one ``RepositoryVersion`` (with its ``content_ids`` and content counts) adding the
  manifest, its blobs and tags as ``RepositoryContent`` rows (``version_added``);
- per repository: ``Repository`` + ``ContainerRepository`` (version 0 included), a
  ``ContainerDistribution`` at its name (hidden, public; every seventh private);
- per namespace (10 repositories each): a ``ContainerNamespace``, its owner (a user named after
  it, with no usable password) and the ``containernamespace_owner`` role, as a first push makes.

The shape: ``repositories`` repositories, ``manifests / repositories`` pushes each. Every manifest
has its own config blob and top layers; all pushes of a repository share its base layers
(``REPO_BASE`` of them), and each tenth repository shares a family base (``FAMILY_BASE`` layers,
mounted into the family's other repositories), so one digest is held by several repositories as
in real hierarchies. Timestamps and pks (UUIDv7-ordered, as pulpcore's) follow the pushes, one
a second. Blob bytes exist only for the first repository's blobs (``<prefix>:blob:<i>``, written
to ``MEDIA_ROOT``); the other blobs have realistic sizes and no file.

Foreign-key triggers are skipped during the load (``session_replication_role = replica``); the
rows are consistent by construction, and ``check_consistency`` verifies it at the end with
anti-joins. Ends with ANALYZE, as autovacuum would.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
FAMILY_BASE = 2  # layers of a family's base image, shared by its repositories
REPO_BASE = 8  # layers shared by every push of one repository
FAMILY_SIZE = 10  # repositories per family, and per namespace
PRIVATE_EVERY = 7  # every seventh distribution is private
OWNER_ROLE = "container.containernamespace_owner"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"


@dataclass(frozen=True)
class Shape:
    blobs: int = 1_000_000
    manifests: int = 100_000
    repositories: int = 10_000
    prefix: str = "scale"

    @property
    def families(self) -> int:
        return max(1, self.repositories // FAMILY_SIZE)

    @property
    def namespaces(self) -> int:
        return -(-self.repositories // FAMILY_SIZE)

    @property
    def repo_base(self) -> int:
        """Repository base layers: fewer when the blob budget is small."""
        spare = self.blobs - self.manifests - self.families * FAMILY_BASE
        return max(0, min(REPO_BASE, spare // max(1, self.repositories) - 1))

    @property
    def first_top(self) -> int:
        return self.manifests + self.families * FAMILY_BASE + self.repositories * self.repo_base

    def check(self) -> None:
        if not self.repositories <= self.manifests < self.blobs:
            raise SystemExit("need repositories <= manifests < blobs")
        if self.first_top > self.blobs:
            raise SystemExit(f"{self.blobs} blobs are too few for this shape")


def _steps(shape: Shape) -> list[tuple[str, str]]:
    """(label, SQL) in order; integers are formatted in, strings are parameters."""
    B, M, R = shape.blobs, shape.manifests, shape.repositories
    F, FB, RB, T0 = shape.families, FAMILY_BASE, shape.repo_base, shape.first_top
    push_time = "(SELECT t0 FROM gen_params) + make_interval(secs => {k0} * {R} + {r})"

    def at(k0: str, r: str) -> str:
        return push_time.format(k0=k0, R=R, r=r)

    return [
        (
            "parameters",
            f"""
            CREATE TEMP TABLE gen_params ON COMMIT DROP AS
            SELECT %(prefix)s::text AS prefix,
                   (SELECT pulp_id FROM core_domain WHERE name = 'default') AS domain,
                   now() - make_interval(secs => {M + 60}) AS t0,
                   (SELECT pulp_id FROM core_role WHERE name = %(owner_role)s) AS owner_role,
                   (SELECT id FROM django_content_type
                     WHERE app_label = 'container' AND model = 'containernamespace') AS ns_type;
            CREATE OR REPLACE FUNCTION pg_temp.uuid_at(t timestamptz) RETURNS uuid
            LANGUAGE sql AS $$
                SELECT encode(set_byte(b, 6, 112 + (get_byte(b, 6) & 15)), 'hex')::uuid
                FROM (SELECT substring(int8send((extract(epoch FROM t) * 1000)::bigint)
                                       FROM 3 FOR 6)
                             || substring(uuid_send(gen_random_uuid()) FROM 7 FOR 10) AS b) s
            $$;
            """,
        ),
        (
            "plan: repositories, namespaces",
            f"""
            CREATE TEMP TABLE gen_repo ON COMMIT DROP AS
            SELECT r, mod(r, {F}) AS family, r / {FAMILY_SIZE} AS ns,
                   p.prefix || '-ns' || (r / {FAMILY_SIZE}) || '/app' || r AS name,
                   ({M} - 1 - r) / {R} + 1 AS pushes,
                   {at("0", "r")} AS created,
                   {at(f"(({M} - 1 - r) / {R})", "r")} AS updated,
                   mod(r, {PRIVATE_EVERY}) = {PRIVATE_EVERY - 1} AS private
            FROM generate_series(0, {R - 1}) AS r, gen_params p;
            ALTER TABLE gen_repo ADD COLUMN rid uuid, ADD COLUMN did uuid;
            UPDATE gen_repo SET rid = pg_temp.uuid_at(created), did = pg_temp.uuid_at(created);
            CREATE UNIQUE INDEX ON gen_repo (r);
            CREATE TEMP TABLE gen_ns ON COMMIT DROP AS
            SELECT ns, p.prefix || '-ns' || ns AS name, min(created) AS created,
                   pg_temp.uuid_at(min(created)) AS nid
            FROM gen_repo, gen_params p GROUP BY ns, p.prefix;
            CREATE UNIQUE INDEX ON gen_ns (ns);
            """,
        ),
        (
            "plan: blobs",
            f"""
            CREATE TEMP TABLE gen_blob ON COMMIT DROP AS
            SELECT i, kind, repo, k, ord, m,
                   {at("(k - 1)", "repo")} + make_interval(secs => mod(i, 1000) / 1000.0) AS t,
                   encode(sha256(convert_to(p.prefix || ':blob:' || i, 'UTF8')), 'hex') AS hex,
                   CASE WHEN repo = 0 THEN octet_length(p.prefix || ':blob:' || i)
                        WHEN kind = 'config' THEN 1000 + mod(i::bigint * 7919, 6000)
                        WHEN kind = 'family' THEN 20000000 + mod(i::bigint * 104729, 30000000)
                        WHEN kind = 'base' THEN 1000000 + mod(i::bigint * 7907, 9000000)
                        ELSE 1000 + mod(i::bigint * 2654435761, 8000000) END AS size
            FROM gen_params p, generate_series(0, {B - 1}) AS i,
            LATERAL (SELECT
                CASE WHEN i < {M} THEN 'config' WHEN i < {M + F * FB} THEN 'family'
                     WHEN i < {T0} THEN 'base' ELSE 'top' END AS kind,
                CASE WHEN i < {M} THEN i WHEN i >= {T0} THEN mod(i - {T0}, {M}) END AS m) AS a,
            LATERAL (SELECT
                CASE WHEN kind = 'family' THEN (i - {M}) / {FB}
                     WHEN kind = 'base' THEN (i - {M + F * FB}) / {max(RB, 1)}
                     ELSE mod(m, {R}) END AS repo,
                CASE WHEN m IS NULL THEN 1 ELSE m / {R} + 1 END AS k,
                CASE WHEN kind = 'top' THEN {FB + RB} + (i - {T0}) / {M} END AS ord) AS b;
            ALTER TABLE gen_blob ADD COLUMN cid uuid, ADD COLUMN aid uuid;
            UPDATE gen_blob SET cid = pg_temp.uuid_at(t), aid = pg_temp.uuid_at(t);
            CREATE UNIQUE INDEX ON gen_blob (i);
            """,
        ),
        (
            "plan: manifests, layers",
            f"""
            CREATE TEMP TABLE gen_manifest ON COMMIT DROP AS
            SELECT m, mod(m, {R}) AS repo, m / {R} + 1 AS k,
                   {at(f"(m / {R})", f"mod(m, {R})")} + interval '0.9 s' AS t
            FROM generate_series(0, {M - 1}) AS m;
            ALTER TABLE gen_manifest ADD COLUMN cid uuid, ADD COLUMN v_tag uuid,
                ADD COLUMN latest_tag uuid, ADD COLUMN data text, ADD COLUMN digest text;
            UPDATE gen_manifest SET cid = pg_temp.uuid_at(t), v_tag = pg_temp.uuid_at(t),
                latest_tag = pg_temp.uuid_at(t);
            CREATE UNIQUE INDEX ON gen_manifest (m);
            CREATE TEMP TABLE gen_layer ON COMMIT DROP AS
            SELECT g.m, j AS ord, {M} + mod(g.repo, {F}) * {FB} + j AS i
              FROM gen_manifest g, generate_series(0, {FB - 1}) AS j
            UNION ALL
            SELECT g.m, {FB} + j, {M + F * FB} + g.repo * {RB} + j
              FROM gen_manifest g, generate_series(0, {RB - 1}) AS j
            UNION ALL
            SELECT m, ord, i FROM gen_blob WHERE kind = 'top';
            WITH layers AS (
                SELECT l.m, string_agg(
                    '{{"mediaType":"{LAYER_TYPE}","digest":"sha256:' || b.hex
                    || '","size":' || b.size || '}}', ',' ORDER BY l.ord) AS json
                FROM gen_layer l JOIN gen_blob b USING (i) GROUP BY l.m)
            UPDATE gen_manifest g SET data =
                '{{"schemaVersion":2,"mediaType":"{MANIFEST_TYPE}","config":{{"mediaType":'
                || '"{CONFIG_TYPE}","digest":"sha256:' || c.hex || '","size":' || c.size
                || '}},"layers":[' || layers.json || ']}}'
            FROM layers, gen_blob c WHERE layers.m = g.m AND c.i = g.m;
            UPDATE gen_manifest SET digest =
                'sha256:' || encode(sha256(convert_to(data, 'UTF8')), 'hex');
            """,
        ),
        (
            "plan: repository content",
            f"""
            CREATE TEMP TABLE gen_rc ON COMMIT DROP AS
            SELECT repo AS r, cid, k AS added, NULL::int AS removed, 'container.manifest' AS type,
                   NULL::int AS i, t FROM gen_manifest
            UNION ALL
            SELECT repo, v_tag, k, NULL, 'container.tag', NULL, t FROM gen_manifest
            UNION ALL
            SELECT g.repo, g.latest_tag, g.k,
                   CASE WHEN g.k < r.pushes THEN g.k + 1 END, 'container.tag', NULL, g.t
              FROM gen_manifest g JOIN gen_repo r ON r.r = g.repo
            UNION ALL
            SELECT repo, cid, k, NULL, 'container.blob', i, t
              FROM gen_blob WHERE kind IN ('config', 'top', 'base')
            UNION ALL
            SELECT r.r, b.cid, 1, NULL, 'container.blob', b.i, {at("0", "r.r")}
              FROM gen_repo r JOIN gen_blob b ON b.kind = 'family' AND b.repo = r.family;
            CREATE INDEX ON gen_rc (r, added);
            CREATE TEMP TABLE gen_version ON COMMIT DROP AS
            SELECT r.r, k, r.rid, {at("greatest(k - 1, 0)", "r.r")} AS t
              FROM gen_repo r, LATERAL generate_series(0, r.pushes) AS k;
            ALTER TABLE gen_version ADD COLUMN vid uuid;
            UPDATE gen_version SET vid = pg_temp.uuid_at(t);
            CREATE UNIQUE INDEX ON gen_version (r, k);
            """,
        ),
        (
            "users, namespaces, roles",
            """
            INSERT INTO auth_user (password, is_superuser, username, first_name, last_name,
                                   email, is_staff, is_active, date_joined)
            SELECT '!', false, name, '', '', '', false, true, created FROM gen_ns;
            INSERT INTO container_containernamespace (pulp_id, pulp_created, pulp_last_updated,
                                                      name)
            SELECT nid, created, created, name FROM gen_ns;
            INSERT INTO core_userrole (pulp_id, pulp_created, pulp_last_updated, object_id,
                                       content_type_id, role_id, user_id, domain_id)
            SELECT pg_temp.uuid_at(n.created), n.created, n.created, n.nid::text, p.ns_type,
                   p.owner_role, u.id, NULL
            FROM gen_ns n JOIN auth_user u ON u.username = n.name, gen_params p;
            """,
        ),
        (
            "repositories, versions, distributions",
            """
            INSERT INTO core_repository (pulp_id, pulp_created, pulp_last_updated, name,
                description, next_version, pulp_type, user_hidden, pulp_labels, pulp_domain_id)
            SELECT rid, created, updated, name, NULL, pushes + 1, 'container.container', false,
                   ''::hstore, p.domain FROM gen_repo, gen_params p;
            INSERT INTO container_containerrepository (repository_ptr_id) SELECT rid FROM gen_repo;
            INSERT INTO core_repositoryversion (pulp_id, pulp_created, pulp_last_updated, number,
                complete, base_version_id, repository_id, info, content_ids)
            SELECT v.vid, v.t, v.t, v.k, true, NULL, v.rid, '{}'::jsonb,
                   coalesce((SELECT array_agg(c.cid) FROM gen_rc c
                             WHERE c.r = v.r AND c.added <= v.k
                               AND (c.removed IS NULL OR c.removed > v.k)), '{}')
            FROM gen_version v;
            INSERT INTO core_distribution (pulp_id, pulp_created, pulp_last_updated, pulp_type,
                name, base_path, repository_id, pulp_labels, pulp_domain_id, hidden, checkpoint)
            SELECT did, created, created, 'container.container', name, name, rid, ''::hstore,
                   p.domain, true, false FROM gen_repo, gen_params p;
            INSERT INTO container_containerdistribution (distribution_ptr_id, private,
                                                         namespace_id)
            SELECT r.did, r.private, n.nid FROM gen_repo r JOIN gen_ns n USING (ns);
            """,
        ),
        (
            "artifacts, content, blobs",
            """
            INSERT INTO core_artifact (pulp_id, pulp_created, pulp_last_updated, file, size,
                                       sha256, timestamp_of_interest, pulp_domain_id)
            SELECT aid, t, t, 'artifact/' || substr(hex, 1, 2) || '/' || substr(hex, 3), size,
                   hex, t, p.domain FROM gen_blob, gen_params p;
            INSERT INTO core_content (pulp_id, pulp_created, pulp_last_updated, pulp_type,
                                      timestamp_of_interest, pulp_domain_id, pulp_labels)
            SELECT cid, t, t, 'container.blob', t, p.domain, ''::hstore
            FROM gen_blob, gen_params p;
            INSERT INTO core_contentartifact (pulp_id, pulp_created, pulp_last_updated,
                                              relative_path, artifact_id, content_id)
            SELECT pg_temp.uuid_at(t), t, t, 'sha256:' || hex, aid, cid FROM gen_blob;
            INSERT INTO container_blob (content_ptr_id, digest, _pulp_domain_id)
            SELECT cid, 'sha256:' || hex, p.domain FROM gen_blob, gen_params p;
            """,
        ),
        (
            "manifests, layer links, tags",
            f"""
            INSERT INTO core_content (pulp_id, pulp_created, pulp_last_updated, pulp_type,
                                      timestamp_of_interest, pulp_domain_id, pulp_labels)
            SELECT cid, t, t, 'container.manifest', t, p.domain, ''::hstore
              FROM gen_manifest, gen_params p
            UNION ALL
            SELECT v_tag, t, t, 'container.tag', t, p.domain, ''::hstore
              FROM gen_manifest, gen_params p
            UNION ALL
            SELECT latest_tag, t, t, 'container.tag', t, p.domain, ''::hstore
              FROM gen_manifest, gen_params p;
            INSERT INTO container_manifest (content_ptr_id, digest, media_type, schema_version,
                data, annotations, _pulp_domain_id, config_blob_id)
            SELECT g.cid, g.digest, '{MANIFEST_TYPE}', 2, g.data, '{{}}'::jsonb, p.domain, c.cid
            FROM gen_manifest g JOIN gen_blob c ON c.i = g.m, gen_params p;
            INSERT INTO container_manifest_blobs (manifest_id, blob_id)
            SELECT g.cid, b.cid FROM gen_layer l JOIN gen_manifest g USING (m)
                                 JOIN gen_blob b USING (i);
            INSERT INTO container_tag (content_ptr_id, name, _pulp_domain_id, tagged_manifest_id)
            SELECT v_tag, 'v' || k, p.domain, cid FROM gen_manifest, gen_params p
            UNION ALL
            SELECT latest_tag, 'latest', p.domain, cid FROM gen_manifest, gen_params p;
            """,
        ),
        (
            "repository content, version counts, transfers",
            """
            INSERT INTO core_repositorycontent (pulp_id, pulp_created, pulp_last_updated,
                content_id, repository_id, version_added_id, version_removed_id)
            SELECT pg_temp.uuid_at(c.t), c.t, c.t, c.cid, a.rid, a.vid, d.vid
            FROM gen_rc c JOIN gen_version a ON a.r = c.r AND a.k = c.added
                 LEFT JOIN gen_version d ON d.r = c.r AND d.k = c.removed;
            INSERT INTO core_repositoryversioncontentdetails (count_type, content_type, count,
                                                               repository_version_id)
            SELECT 'A', c.type, count(*), v.vid FROM gen_rc c
              JOIN gen_version v ON v.r = c.r AND v.k = c.added GROUP BY v.vid, c.type
            UNION ALL
            SELECT 'R', c.type, count(*), v.vid FROM gen_rc c
              JOIN gen_version v ON v.r = c.r AND v.k = c.removed GROUP BY v.vid, c.type
            UNION ALL
            SELECT 'P', c.type, count(*), v.vid FROM gen_version v
              JOIN gen_rc c ON c.r = v.r AND c.added <= v.k
                           AND (c.removed IS NULL OR c.removed > v.k)
             WHERE v.k > 0 GROUP BY v.vid, c.type;
            INSERT INTO container_blobtransfer (pulp_id, pulp_created, pulp_last_updated,
                repository_name, digest, outcome, reason, bytes_received, bytes_saved)
            SELECT pg_temp.uuid_at(c.t), c.t, c.t, r.name, 'sha256:' || b.hex,
                   CASE WHEN b.repo = c.r THEN 'uploaded' ELSE 'mounted' END,
                   CASE WHEN b.repo = c.r THEN '' ELSE 'from ' || o.name END,
                   CASE WHEN b.repo = c.r THEN b.size ELSE 0 END,
                   CASE WHEN b.repo = c.r THEN 0 ELSE b.size END
            FROM gen_rc c JOIN gen_blob b USING (i) JOIN gen_repo r ON r.r = c.r
                 JOIN gen_repo o ON o.r = b.repo;
            """,
        ),
    ]


# Tables that get a row per blob (or more): their secondary indexes are built after the load.
BULK_TABLES = (
    "core_artifact", "core_content", "core_contentartifact", "container_blob",
    "container_manifest_blobs", "core_repositorycontent", "container_blobtransfer",
    "core_repositoryversioncontentdetails",
)  # fmt: skip
BULK_FROM = 100_000  # blobs; below, inserting into the indexes is cheaper than rebuilding them

ANALYZED = (
    "auth_user", "core_userrole", "container_containernamespace", "core_repository",
    "container_containerrepository", "core_repositoryversion", "core_distribution",
    "container_containerdistribution", "core_artifact", "core_content", "core_contentartifact",
    "container_blob", "container_manifest", "container_manifest_blobs", "container_tag",
    "core_repositorycontent", "core_repositoryversioncontentdetails", "container_blobtransfer",
)  # fmt: skip

# Rows whose foreign key points nowhere (each must count 0): the triggers skipped, checked.
CONSISTENCY = {
    "content artifacts without artifact": """SELECT count(*) FROM core_contentartifact ca
        LEFT JOIN core_artifact a ON a.pulp_id = ca.artifact_id WHERE a.pulp_id IS NULL""",
    "blobs without content": """SELECT count(*) FROM container_blob b
        LEFT JOIN core_content c ON c.pulp_id = b.content_ptr_id WHERE c.pulp_id IS NULL""",
    "layer links without blob": """SELECT count(*) FROM container_manifest_blobs l
        LEFT JOIN container_blob b ON b.content_ptr_id = l.blob_id WHERE b.digest IS NULL""",
    "repository content without content or version": """SELECT count(*)
        FROM core_repositorycontent rc
        LEFT JOIN core_content c ON c.pulp_id = rc.content_id
        LEFT JOIN core_repositoryversion v ON v.pulp_id = rc.version_added_id
        WHERE c.pulp_id IS NULL OR v.pulp_id IS NULL""",
    "tags without manifest": """SELECT count(*) FROM container_tag t
        LEFT JOIN container_manifest m ON m.content_ptr_id = t.tagged_manifest_id
        WHERE m.digest IS NULL""",
}


def _drop_secondary_indexes(cursor) -> list[str]:
    """Drop the indexes and unique constraints (not the primary keys) of the big tables; return
    the statements that make them again, as they were. A million random-key inserts into a
    btree cost far more than building it once from sorted rows (the usual bulk-load practice);
    re-adding the unique constraints also checks the generated rows against them."""
    tables = list(BULK_TABLES)
    cursor.execute(
        """SELECT conname, conrelid::regclass::text, pg_get_constraintdef(oid)
           FROM pg_constraint WHERE contype = 'u' AND conrelid = ANY(%s::regclass[])""",
        [tables],
    )
    constraints = cursor.fetchall()
    cursor.execute(
        """SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index i
           WHERE indrelid = ANY(%s::regclass[]) AND NOT indisprimary
             AND NOT EXISTS (SELECT 1 FROM pg_constraint c
                             WHERE c.conindid = i.indexrelid AND c.contype IN ('u', 'p'))""",
        [tables],
    )
    indexes = cursor.fetchall()
    for name, table, _ in constraints:
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _ in indexes:
        cursor.execute(f"DROP INDEX {name}")
    return [definition for _, definition in indexes] + [
        f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'
        for name, table, definition in constraints
    ]


def generate(shape: Shape, media_root: Path | None = None, say=print) -> dict[str, float]:
    """Insert ``shape`` in one transaction (Django must be set up); return seconds per step."""
    from django.db import connection, transaction

    shape.check()
    timings: dict[str, float] = {}
    params = {"prefix": shape.prefix, "owner_role": OWNER_ROLE}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM container_containernamespace WHERE name = %s",
                       [f"{shape.prefix}-ns0"])  # fmt: skip
        if cursor.fetchone():
            raise SystemExit(f"prefix {shape.prefix!r} was generated already; pick another")
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("SET LOCAL synchronous_commit = off")
        cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
        steps = _steps(shape)
        if shape.blobs >= BULK_FROM:
            recreate = _drop_secondary_indexes(cursor)
            steps.append(("recreate indexes", ";\n".join(recreate)))
        for label, sql in steps:
            started = time.monotonic()
            cursor.execute(sql, params)
            timings[label] = time.monotonic() - started
            say(f"  {label}: {timings[label]:.1f}s")
        if media_root is not None:
            cursor.execute("SELECT hex, (SELECT prefix FROM gen_params) || ':blob:' || i "
                           "FROM gen_blob WHERE repo = 0")  # fmt: skip
            for hex_digest, text in cursor.fetchall():
                path = media_root / "artifact" / hex_digest[:2] / hex_digest[2:]
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(text.encode())
        cursor.execute("SET LOCAL session_replication_role = origin")
    started = time.monotonic()
    with connection.cursor() as cursor:
        for table in ANALYZED:
            cursor.execute(f"ANALYZE {table}")
        timings["analyze"] = time.monotonic() - started
        say(f"  analyze: {timings['analyze']:.1f}s")
        started = time.monotonic()
        for what, sql in CONSISTENCY.items():
            cursor.execute(sql)
            (broken,) = cursor.fetchone()
            if broken:
                raise RuntimeError(f"{broken} {what}")
        timings["consistency check"] = time.monotonic() - started
        say(f"  consistency check: {timings['consistency check']:.1f}s")
    return timings


def setup_django(data_dir: Path) -> None:
    """Django over the settings (and so the database) of the instance in ``data_dir``."""
    settings_file = data_dir / "settings.py"
    if not settings_file.is_file():
        raise SystemExit(f"no {settings_file}: start the instance once (scripts/run.sh)")
    os.environ["PULP_SETTINGS"] = str(settings_file)
    os.environ["DJANGO_SETTINGS_MODULE"] = "pulpcore.app.settings"
    import django

    django.setup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("PULP_DATA_DIR", REPOSITORY_ROOT / ".pulp")),
    )
    parser.add_argument("--blobs", type=int, default=Shape.blobs)
    parser.add_argument("--manifests", type=int, default=Shape.manifests)
    parser.add_argument("--repositories", type=int, default=Shape.repositories)
    parser.add_argument(
        "--prefix",
        default=Shape.prefix,
        help="names start with it (namespaces <prefix>-ns<n>); one run per prefix",
    )
    args = parser.parse_args(argv)
    shape = Shape(args.blobs, args.manifests, args.repositories, args.prefix)
    shape.check()
    setup_django(args.data_dir.resolve())
    from django.conf import settings

    print(f"generating {shape} into {args.data_dir}", flush=True)
    started = time.monotonic()
    generate(shape, Path(settings.MEDIA_ROOT), say=lambda line: print(line, flush=True))
    print(f"generated in {time.monotonic() - started:.1f}s", flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(REPOSITORY_ROOT))
    main()
