<%!
def literal(value):
    """A revision id (or a tuple of them) as ruff format writes it: double quotes."""
    if value is None:
        return "None"
    if isinstance(value, (list, tuple)):
        items = ", ".join(literal(item) for item in value)
        return f"({items},)" if len(value) == 1 else f"({items})"
    return f'"{value}"'


def docstring(text):
    """The message as the docstring's first line: a quote or backslash in it is text."""
    return text.replace("\\", "\\\\").replace('"', '\\"')
%>"""${docstring(message)}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

from alembic import op

revision = ${literal(up_revision)}
down_revision = ${literal(down_revision)}
branch_labels = ${literal(branch_labels)}
depends_on = ${literal(depends_on)}


def upgrade() -> None:
    ${upgrades if upgrades else 'op.execute("")'}


def downgrade() -> None:
    ${downgrades if downgrades else 'op.execute("")'}
