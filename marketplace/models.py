"""Every table of the application, imported in one place for Alembic and tests."""

from marketplace.accounts.models import ApiToken, LoginAttempt, Organisation, User
from marketplace.audit.models import AuditEvent
from marketplace.core.idempotency import IdempotencyRecord
from marketplace.disputes.models import Concern, ConcernStateChange
from marketplace.evaluations.models import Accreditation
from marketplace.funding.models import Pledge, PledgeStateChange
from marketplace.ledger.models import JournalEntry, JournalLeg, LedgerAccount
from marketplace.notifications.models import Notification
from marketplace.obligations.models import (
    Credit,
    CreditStateChange,
    Obligation,
    ObligationStateChange,
)
from marketplace.payments.models import (
    BalanceReturn,
    ConnectedAccount,
    Payment,
    PaymentSetup,
    ReconciliationRun,
    Refund,
    StripeCustomer,
    StripeEvent,
    Transfer,
)
from marketplace.pools.models import Pool, PoolStateChange
from marketplace.projects.models import (
    ListingVersion,
    Project,
    ProjectStateChange,
    ValuationSnapshot,
)
from marketplace.receipts.models import Receipt, ReceiptCounter
from marketplace.registry.models import Retirement, TokenBlock, TokenTransfer, TransferRange
from marketplace.rounds.models import Round, RoundStateChange
from marketplace.settlement.models import Settlement, SettlementShare
from outcomes.catalogue import OutcomeType
from outcomes.commitments import OutcomeCommitment
from outcomes.db import Base
from outcomes.evaluation import Evaluation, EvaluationResult, EvaluationStateChange
from outcomes.evidence import EvidenceFile
from outcomes.progress import ProgressReport

__all__ = [
    "Accreditation",
    "ApiToken",
    "AuditEvent",
    "BalanceReturn",
    "Base",
    "Concern",
    "ConcernStateChange",
    "ConnectedAccount",
    "Credit",
    "CreditStateChange",
    "Evaluation",
    "EvaluationResult",
    "EvaluationStateChange",
    "EvidenceFile",
    "IdempotencyRecord",
    "JournalEntry",
    "JournalLeg",
    "LedgerAccount",
    "ListingVersion",
    "LoginAttempt",
    "Notification",
    "Obligation",
    "ObligationStateChange",
    "Organisation",
    "OutcomeCommitment",
    "OutcomeType",
    "Payment",
    "PaymentSetup",
    "Pledge",
    "PledgeStateChange",
    "Pool",
    "PoolStateChange",
    "ProgressReport",
    "Project",
    "ProjectStateChange",
    "Receipt",
    "ReceiptCounter",
    "ReconciliationRun",
    "Refund",
    "Retirement",
    "Round",
    "RoundStateChange",
    "Settlement",
    "SettlementShare",
    "StripeCustomer",
    "StripeEvent",
    "TokenBlock",
    "TokenTransfer",
    "Transfer",
    "TransferRange",
    "User",
    "ValuationSnapshot",
]
