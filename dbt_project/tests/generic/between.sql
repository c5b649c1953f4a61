{#-
  A value within [min_value, max_value] (inclusive). Missing values pass: a rate is missing
  when a side is, and other tests say where a value is required.
  Written here because dbt packages (dbt_utils) cannot be installed offline.
-#}
{% test between(model, column_name, min_value, max_value) %}
select {{ column_name }}
from {{ model }}
where {{ column_name }} < {{ min_value }} or {{ column_name }} > {{ max_value }}
{% endtest %}
