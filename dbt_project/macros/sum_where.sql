{#-
  A count summed over the rows matching a condition, 0 when none match, as BIGINT (DuckDB's
  sum() of integers is a 128-bit HUGEINT, which Parquet and most tools do not have).
  Use it only inside a group whose period the publisher did publish: a zero here means "no
  events", not "no data" (the marts leave unpublished periods NULL).
-#}
{% macro sum_where(column, condition='true') -%}
cast(coalesce(sum({{ column }}) filter (where {{ condition }}), 0) as bigint)
{%- endmacro %}
