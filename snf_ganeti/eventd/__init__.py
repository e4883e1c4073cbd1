"""eventd: Ganeti's job queue as an AMQP feed a Synnefo frontend accepts unchanged.

Public surface: :func:`snf_ganeti.eventd.plan.plan_job` (pure) and
:class:`snf_ganeti.eventd.daemon.Eventd` (the daemon); ``snf-ganeti eventd``
runs it.
"""
