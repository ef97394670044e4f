"""Cardholder self-service (issue 18, Build 6): a cardholder signs in at /me/ and reports their own
card lost (R-USE-1), sees its status and their own passages of the last 30 days. Cardholders are
not operators: no Django account, a session key of their own, never the admin or the desks."""
