-- CBP encounters by state, one row per figure, as the newest file carrying the month
-- published it (macros/rows_of_newest_file.sql).

with newest as (

    select * from {{ rows_of_newest_file(source('raw', 'cbp_encounters_state'), 'month') }}

),

renamed as (

    select
        cast(month as date) as month,
        cast(fiscal_year as integer) as fiscal_year,
        fiscal_year_published,
        month_grouping,
        land_border_region,
        state,
        demographic,
        demographic_published,
        citizenship,
        title_of_authority,
        cast(encounters as bigint) as encounters,
        source_file,
        source_row,
        vintage,
        first_published_vintage,
        vintages_with_period as vintages_with_month
    from newest

)

select * from renamed
