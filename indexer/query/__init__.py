"""Finding photos: query text -> `Query` (parse.py) -> ranked `Match`es (engine.py)."""

from indexer.query.engine import Match, count_indexed, count_matches, search
from indexer.query.parse import Query, QueryError, parse

__all__ = ["Match", "Query", "QueryError", "count_indexed", "count_matches", "parse", "search"]
