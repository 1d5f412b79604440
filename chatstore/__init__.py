"""chatstore: a PostgreSQL store for AI-chatbot conversations.

The schema lives in reviewed SQL migrations (``sql/migrations``, shipped inside the
package); :mod:`chatstore.migrations` applies them.
"""

__version__ = "0.1.0"
