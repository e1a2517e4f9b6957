"""The code blocks of the first SDK's README (the seed,
``shared/seed/000_ba84403bd5f9d494.txt``), exactly as printed there but for
trailing spaces; ``test_seed_readme.test_examples_are_verbatim`` checks each
against the seed itself."""

#: ```bash```
INSTALL = """\
pip install tamesdk
"""

#: ```python```
BASIC_USAGE = """\
import tamesdk

# Configure once, use everywhere
tamesdk.configure(api_url="http://localhost:8000")

# Simplest usage - decorator
@tamesdk.enforce_policy
def read_file(path: str) -> str:
    with open(path) as f:
        return f.read()

# The decorator automatically enforces policies
content = read_file("/tmp/safe_file.txt")  # ✅ Allowed
content = read_file("/etc/passwd")         # ❌ Blocked by policy
"""

#: ```python```
CONTEXT_MANAGER = """\
import tamesdk

with tamesdk.Client() as client:
    # Test policy without executing
    decision = client.enforce("delete_file", {"path": "/important/file.txt"})

    if decision.is_allowed:
        os.remove("/important/file.txt")
        client.update_result(decision.session_id, decision.log_id, {"status": "deleted"})
"""

#: ```python```
ASYNC_SUPPORT = """\
import tamesdk
import asyncio

async def main():
    async with tamesdk.AsyncClient() as client:
        # Async policy enforcement
        result = await client.execute_tool(
            "api_call",
            {"endpoint": "https://api.example.com/data"},
            executor=make_api_call
        )

asyncio.run(main())
"""

#: ```python```
AI_AGENT_CONTROL = """\
import tamesdk
from openai import OpenAI

@tamesdk.enforce_policy
def call_openai_api(prompt: str, model: str = "gpt-4") -> str:
    client = OpenAI()
    response = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": prompt}]
    )
    return response.choices[0].message.content

# Policies can control:
# - Which models are allowed
# - Prompt content filtering
# - Rate limiting per user
# - Cost controls
"""

#: ```python```
FILE_SYSTEM_OPERATIONS = '''\
import tamesdk

@tamesdk.with_approval(approval_message="Modifying system files")
def write_system_config(path: str, content: str) -> None:
    """Writes require approval for system paths."""
    with open(path, 'w') as f:
        f.write(content)

@tamesdk.enforce_policy
def read_user_file(path: str) -> str:
    """Regular files are auto-approved."""
    with open(path) as f:
        return f.read()
'''

#: ```python```
DATABASE_OPERATIONS = '''\
import tamesdk

@tamesdk.log_action(level="INFO")
def query_database(sql: str) -> list:
    """All database queries are logged."""
    return execute_sql(sql)

@tamesdk.enforce_policy(metadata={"sensitive": True})
def delete_user_data(user_id: str) -> bool:
    """Deletions require policy approval."""
    return delete_user(user_id)
'''

#: ```python```
MCP_AGENT_INTEGRATION = """\
import tamesdk
from mcp import types

class TameWrappedMCPAgent:
    def __init__(self):
        self.client = tamesdk.Client()

    async def execute_tool(self, tool_name: str, args: dict):
        # Every MCP tool call goes through Tame
        return await self.client.execute_tool(tool_name, args, executor=self._mcp_execute)

    async def _mcp_execute(self, tool_name: str, args: dict):
        # Your MCP tool execution logic
        return await self.mcp_session.call_tool(tool_name, args)
"""

#: ```bash```
CLI_USAGE = """\
# Check API status
tamesdk status

# Test a tool call
tamesdk test read_file --args '{"path": "/tmp/test.txt"}'

# View session logs
tamesdk logs --format table

# Start interactive mode
tamesdk interactive

# Check policy information
tamesdk policy
"""

#: ```bash```
CLI_CONFIGURATION = """\
# Environment variables
export TAME_API_URL=http://localhost:8000
export TAME_API_KEY=your-api-key

# Or use config file
tamesdk config save --file ~/.tame/config.yaml
tamesdk --config ~/.tame/config.yaml status
"""

#: ```bash```
ENVIRONMENT_VARIABLES = """\
TAME_API_URL=http://localhost:8000    # Tame API server URL
TAME_API_KEY=your-secret-key          # Authentication key
TAME_SESSION_ID=custom-session        # Default session ID
TAME_AGENT_ID=my-agent               # Agent identifier
TAME_USER_ID=user123                 # User identifier
TAME_BYPASS_MODE=false               # Bypass policy enforcement
"""

#: ```python```
PROGRAMMATIC_CONFIGURATION = """\
import tamesdk

# Global configuration
tamesdk.configure(
    api_url="http://localhost:8000",
    api_key="your-api-key",
    session_id="custom-session",
    agent_id="my-agent",
    timeout=30.0,
    raise_on_deny=True
)

# Per-client configuration
client = tamesdk.Client(
    api_url="http://prod.tame.internal:8000",
    api_key="prod-key",
    agent_id="production-agent"
)
"""

#: ```yaml```
CONFIGURATION_FILE = """\
# ~/.tame/config.yaml
api_url: "http://localhost:8000"
api_key: "your-api-key"
session_id: "dev-session"
agent_id: "development-agent"
timeout: 30.0
raise_on_deny: true
raise_on_approve: true
bypass_mode: false
"""

#: ```yaml```
BASIC_FILE_ACCESS_POLICY = """\
# policy.yaml
version: "1.0"
description: "File access control policy"

rules:
  - name: "allow_temp_files"
    description: "Allow access to temporary files"
    condition: |
      tool_name == "read_file" and
      tool_args.path.startswith("/tmp/")
    action: "allow"

  - name: "deny_system_files"
    description: "Block access to system files"
    condition: |
      tool_name == "read_file" and
      (tool_args.path.startswith("/etc/") or
       tool_args.path.startswith("/sys/"))
    action: "deny"
    reason: "System files are not accessible"

  - name: "approve_user_data"
    description: "Require approval for user data access"
    condition: |
      tool_name == "delete_file" and
      tool_args.path.startswith("/home/")
    action: "approve"
    reason: "Deleting user files requires manual approval"
"""

#: ```yaml```
ADVANCED_AGENT_CONTROL_POLICY = """\
version: "2.0"
description: "Comprehensive agent control policy"

rules:
  - name: "rate_limit_api_calls"
    description: "Limit API calls per session"
    condition: |
      tool_name.startswith("api_") and
      session.action_count > 100
    action: "deny"
    reason: "Rate limit exceeded for this session"

  - name: "business_hours_only"
    description: "Restrict sensitive operations to business hours"
    condition: |
      tool_args.sensitive == true and
      (datetime.hour < 9 or datetime.hour > 17)
    action: "approve"
    reason: "Sensitive operations outside business hours require approval"

  - name: "cost_control"
    description: "Control expensive model usage"
    condition: |
      tool_name == "openai_completion" and
      tool_args.model in ["gpt-4", "gpt-4-turbo"] and
      session.estimated_cost > 10.0
    action: "approve"
    reason: "High-cost model usage requires approval"
"""

#: ```python```
CUSTOM_ERROR_HANDLING = """\
import tamesdk
from tamesdk.exceptions import PolicyViolationException, ApprovalRequiredException

try:
    result = dangerous_operation()
except PolicyViolationException as e:
    logger.error(f"Policy denied: {e.decision.reason}")
    # Handle denial gracefully
    result = safe_fallback()
except ApprovalRequiredException as e:
    logger.info(f"Approval required: {e.decision.reason}")
    # Queue for manual approval
    queue_for_approval(e.decision)
    result = None
"""

#: ```python```
SESSION_MANAGEMENT = """\
import tamesdk

# Custom session with metadata
with tamesdk.Client(
    session_id="user-123-session",
    metadata={
        "user_role": "admin",
        "department": "engineering",
        "project": "ai-automation"
    }
) as client:

    # All actions in this session have the metadata
    client.execute_tool("deploy_model", {"version": "v2.1"})
"""

#: ```python```
POLICY_TESTING = """\
import tamesdk

# Test policies before deployment
client = tamesdk.Client()

test_cases = [
    ("read_file", {"path": "/tmp/safe.txt"}),
    ("read_file", {"path": "/etc/passwd"}),
    ("delete_file", {"path": "/home/user/document.txt"})
]

for tool_name, args in test_cases:
    result = client.test_policy(tool_name, args)
    print(f"{tool_name}: {result['decision']} - {result['reason']}")
"""

#: ```python```
MONITORING_INTEGRATION = """\
import tamesdk
import logging

# Custom logging integration
class TameHandler(logging.Handler):
    def __init__(self):
        super().__init__()
        self.client = tamesdk.Client()

    def emit(self, record):
        if record.levelno >= logging.ERROR:
            # Log errors to Tame for monitoring
            self.client.execute_tool("log_error", {
                "message": record.getMessage(),
                "level": record.levelname,
                "module": record.module
            })

logger = logging.getLogger()
logger.addHandler(TameHandler())
"""

#: ```bash```
TESTING = """\
# Install with dev dependencies
pip install tamesdk[dev]

# Run tests
pytest

# Run with coverage
pytest --cov=tamesdk

# Type checking
mypy tamesdk

# Code formatting
black tamesdk
isort tamesdk
"""

#: ```python```
API_CLIENT = """\
client = tamesdk.Client(
    api_url="http://localhost:8000",
    api_key="your-key",
    session_id="optional-session-id"
)
"""

#: ```python```
API_ASYNC_CLIENT = """\
async with tamesdk.AsyncClient() as client:
    decision = await client.enforce("tool_name", {"arg": "value"})
"""

#: ```python```
API_ENFORCE_POLICY = """\
@tamesdk.enforce_policy(
    tool_name="custom_name",  # Optional: override function name
    raise_on_deny=True,       # Raise exception if denied
    raise_on_approve=True,    # Raise exception if approval needed
    metadata={"key": "value"} # Additional metadata
)
def my_function(arg1, arg2):
    return process(arg1, arg2)
"""

#: ```python```
API_WITH_APPROVAL = """\
@tamesdk.with_approval(approval_message="This modifies system state")
def dangerous_operation():
    return modify_system()
"""

#: ```python```
API_LOG_ACTION = """\
@tamesdk.log_action(level="INFO")
def helper_function(data):
    return transform(data)
"""

#: ```python```
API_ENFORCEMENT_DECISION = """\
@dataclass
class EnforcementDecision:
    session_id: str
    action: ActionType  # ALLOW, DENY, APPROVE
    rule_name: Optional[str]
    reason: str
    policy_version: str
    log_id: str
    timestamp: datetime
    tool_name: str
    tool_args: Dict[str, Any]
"""

#: ```bash```
DEVELOPMENT_SETUP = """\
git clone https://github.com/tame/tamesdk
cd tamesdk
pip install -e .[dev]
pre-commit install
"""

#: ```bash```
RUNNING_TESTS = """\
pytest                    # Run all tests
pytest tests/unit/        # Unit tests only
pytest tests/integration/ # Integration tests only
pytest --cov=tamesdk     # With coverage
"""
