"""On SQLite, project text search through an FTS5 trigram index (PostgreSQL has had
trigram indexes since 0003): an external-content table over the projects' title
and summary, kept in step by triggers.

Revision ID: 0012_sqlite_search
Revises: 0011_token_scopes
Create Date: 2026-11-30
"""

from alembic import op

revision = "0012_sqlite_search"
down_revision = "0011_token_scopes"
branch_labels = None
depends_on = None

TRIGGERS = {
    "projects_text_insert": (
        "AFTER INSERT ON projects BEGIN "
        "INSERT INTO project_text (rowid, title, summary) "
        "VALUES (new.id, new.title, new.summary); END"
    ),
    "projects_text_delete": (
        "AFTER DELETE ON projects BEGIN "
        "INSERT INTO project_text (project_text, rowid, title, summary) "
        "VALUES ('delete', old.id, old.title, old.summary); END"
    ),
    "projects_text_update": (
        "AFTER UPDATE OF title, summary ON projects BEGIN "
        "INSERT INTO project_text (project_text, rowid, title, summary) "
        "VALUES ('delete', old.id, old.title, old.summary); "
        "INSERT INTO project_text (rowid, title, summary) "
        "VALUES (new.id, new.title, new.summary); END"
    ),
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute(
        "CREATE VIRTUAL TABLE project_text USING fts5("
        "title, summary, content='projects', content_rowid='id', tokenize='trigram')"
    )
    for name, body in TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {body}")
    op.execute("INSERT INTO project_text (project_text) VALUES ('rebuild')")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER {name}")
    op.execute("DROP TABLE project_text")
