"""What every paginated listing knows about its pages (the listings hold `page`, `per_page` and `total`)."""
from __future__ import annotations


class Pagination:
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        """At least one page, even when there is nothing to list."""
        return max((self.total + self.per_page - 1) // self.per_page, 1)

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages
