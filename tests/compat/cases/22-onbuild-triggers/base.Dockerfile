# Built first (case.json "pre"): an image carrying ONBUILD triggers.
FROM busybox:1.35
ONBUILD ARG TRIGGER_ARG=from-trigger
ONBUILD COPY trigger.txt /from-trigger/
ONBUILD RUN echo "ran trigger with $TRIGGER_ARG" > /trigger-ran.txt
ONBUILD ENV TRIGGERED=yes
RUN touch /base-marker
