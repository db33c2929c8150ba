"""The single error type of the estimator: errors are data (which field, what is wrong)."""

from __future__ import annotations


class EstimatorError(ValueError):
    """Raised for any invalid input; `field` names the offending input field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}
