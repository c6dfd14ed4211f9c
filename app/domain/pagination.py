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

    @property
    def first_index(self) -> int:
        """1-based position of this page's first item (0 when there is nothing to list)."""
        return (self.page - 1) * self.per_page + 1 if self.total else 0

    @property
    def last_index(self) -> int:
        return min(self.page * self.per_page, self.total)

    def page_window(self, around: int = 2) -> list[int | None]:
        """Page numbers to offer: first, last and `around` either side of the current one; None is a gap."""
        wanted = {1, self.pages, *range(self.page - around, self.page + around + 1)}
        numbers = sorted(n for n in wanted if 1 <= n <= self.pages)
        window: list[int | None] = []
        for number in numbers:
            if window and number - window[-1] > 1:
                window.append(None)
            window.append(number)
        return window
