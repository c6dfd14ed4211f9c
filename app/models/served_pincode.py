from __future__ import annotations

from sqlalchemy import Boolean, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db

PINCODE_LENGTH = 6


class ServedPincode(db.Model):
    """A PIN code the network delivers to, and whether it offers cash on delivery and express there.

    The list is replaced whole from an uploaded file (app.services.shipments.serviceability). An empty table
    means that every PIN code in India's directory is served, with both options, so a new install books at once.
    """

    __tablename__ = "served_pincodes"

    pincode: Mapped[str] = mapped_column(String(PINCODE_LENGTH), primary_key=True)
    cod: Mapped[bool] = mapped_column(Boolean, nullable=False)
    express: Mapped[bool] = mapped_column(Boolean, nullable=False)

    def __repr__(self) -> str:
        return f"<ServedPincode {self.pincode} cod={self.cod} express={self.express}>"
