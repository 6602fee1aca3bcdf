"""SQLAlchemy 2.0 models: batches of documents, their pages, fields, digits and corrections."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

DOCUMENT_STATUSES = ("queued", "processing", "done", "failed")
FIELD_STATUSES = ("accepted", "review", "corrected")


class Base(DeclarativeBase):
    pass


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Batch(Base):
    __tablename__ = "batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    template: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now, server_default=func.now())

    documents: Mapped[list[Document]] = relationship(back_populates="batch", cascade="all, delete-orphan")


class Document(Base):
    __tablename__ = "documents"
    __table_args__ = (
        UniqueConstraint("batch_id", "path", name="uq_documents_batch_path"),
        Index("ix_documents_sha256", "sha256"),
        Index("ix_documents_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(Text)  # as submitted
    sha256: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    template: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now, server_default=func.now())
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    seconds: Mapped[float | None] = mapped_column(Float)  # processing time
    timings: Mapped[dict | None] = mapped_column(JSON)  # seconds per stage

    batch: Mapped[Batch] = relationship(back_populates="documents")
    pages: Mapped[list[Page]] = relationship(
        back_populates="document", cascade="all, delete-orphan", order_by="Page.number"
    )


class Page(Base):
    __tablename__ = "pages"
    __table_args__ = (UniqueConstraint("document_id", "number", name="uq_pages_document_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)  # 1-based
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    deskew_angle: Mapped[float] = mapped_column(Float, default=0.0)
    registration_score: Mapped[float | None] = mapped_column(Float)
    problems: Mapped[str | None] = mapped_column(Text)

    document: Mapped[Document] = relationship(back_populates="pages")
    fields: Mapped[list[Field]] = relationship(back_populates="page", cascade="all, delete-orphan", order_by="Field.id")


class Field(Base):
    __tablename__ = "fields"
    __table_args__ = (
        Index("ix_fields_document", "document_id"),
        Index("ix_fields_page", "page_id"),  # results walk documents -> pages -> fields
        Index("ix_fields_status_confidence", "status", "confidence"),
        Index("ix_fields_name", "name"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    page_id: Mapped[int] = mapped_column(ForeignKey("pages.id", ondelete="CASCADE"))
    # Denormalised from the page so that results queries filter without joins.
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(8))
    value: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(String(200))
    confidence: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16))
    reasons: Mapped[str | None] = mapped_column(Text)
    bbox_x: Mapped[int] = mapped_column(Integer)
    bbox_y: Mapped[int] = mapped_column(Integer)
    bbox_w: Mapped[int] = mapped_column(Integer)
    bbox_h: Mapped[int] = mapped_column(Integer)
    crop: Mapped[bytes | None] = mapped_column(LargeBinary)  # PNG

    page: Mapped[Page] = relationship(back_populates="fields")
    digits: Mapped[list[Digit]] = relationship(
        back_populates="field", cascade="all, delete-orphan", order_by="Digit.position"
    )
    corrections: Mapped[list[Correction]] = relationship(back_populates="field", cascade="all, delete-orphan")

    @property
    def bbox(self) -> list[int]:
        return [self.bbox_x, self.bbox_y, self.bbox_w, self.bbox_h]


class Digit(Base):
    __tablename__ = "digits"
    __table_args__ = (Index("ix_digits_field", "field_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    field_id: Mapped[int] = mapped_column(ForeignKey("fields.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    bbox_x: Mapped[int] = mapped_column(Integer)
    bbox_y: Mapped[int] = mapped_column(Integer)
    bbox_w: Mapped[int] = mapped_column(Integer)
    bbox_h: Mapped[int] = mapped_column(Integer)
    cnn_label: Mapped[int] = mapped_column(Integer)
    cnn_probability: Mapped[float] = mapped_column(Float)
    svm_label: Mapped[int] = mapped_column(Integer)
    svm_score: Mapped[float] = mapped_column(Float)
    label: Mapped[int] = mapped_column(Integer)
    confidence: Mapped[float] = mapped_column(Float)
    disagree: Mapped[bool] = mapped_column(Boolean, default=False)
    low_confidence: Mapped[bool] = mapped_column(Boolean, default=False)

    field: Mapped[Field] = relationship(back_populates="digits")

    @property
    def bbox(self) -> list[int]:
        return [self.bbox_x, self.bbox_y, self.bbox_w, self.bbox_h]


class Correction(Base):
    __tablename__ = "corrections"
    __table_args__ = (Index("ix_corrections_field", "field_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    field_id: Mapped[int] = mapped_column(ForeignKey("fields.id", ondelete="CASCADE"))
    old_value: Mapped[str] = mapped_column(String(200))
    new_value: Mapped[str] = mapped_column(String(200))
    who: Mapped[str] = mapped_column(String(200))
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now, server_default=func.now())

    field: Mapped[Field] = relationship(back_populates="corrections")
